"""Kernel grouping and whole-layer scheduling.

A kernel group is the P kernels ``W[j, i]`` that the P PEs process at once.  Hardware rule:
all kernels of one group share the input channel ``i`` (they all read the same tile
``X[t, i]``); any output channels ``j`` may share a group, because each PE's accumulator
memory is addressed by ``j``.  Groups are listed input channel by input channel
(``i = 0, 1, ...``), ``ceil(Cout / P)`` groups per channel; when ``P`` does not divide
``Cout`` the last group of each channel has idle PE slots (kernel id -1, empty mask row).

* ``fixed``: output channels in order, ``j = p + P*k`` in group ``k`` of the channel.
* ``balanced``: within each input channel, kernels sorted by decreasing non-zero count (ties
  by ``j``), then cut into consecutive chunks of P, so the PEs of a group have similar counts
  and little idle time.  Sorting then chunking minimises the sum over groups of the largest
  count (the PE part of the lower bound) among all partitions into groups of P.
* ``bank_aware``: ``balanced``, then a local search (numba) that swaps kernels between groups of
  the same input channel to lower the sum of the groups' lower bounds
  ``max(max_p nnz, max_b ceil(reads_b / R))`` for the given bank map: the bank part binds when a
  group's kernels pile their reads into the same banks.  Needs ``bank_of`` and ``banks``.
  (Aimed at schedules without broadcast.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UnknownNameError, UsageError
from ._kernels import bank_aware_swaps
from .model import Schedule, _check_count, resolve_bank_map
from .schedulers import check_mask, schedule_groups

GROUPINGS = ("balanced", "fixed", "bank_aware")


def group_kernels(mask_layer, num_pes: int, method: str = "balanced", *, bank_of=None, banks: int | None = None,
                  ports: int = 1, passes: int = 2):
    """Group the kernels of one layer (bool [Cout, Cin, F]).

    Returns ``(groups, grouped_mask)``: ``groups`` int64 [G, P] of flat kernel ids ``j*Cin + i``
    (-1 for an idle PE slot) and ``grouped_mask`` bool [G, P, F].  G = Cin * ceil(Cout / P).
    ``bank_of``, ``banks``, ``ports``, ``passes``: used by ``bank_aware`` only.
    """
    mask_layer = np.asarray(mask_layer)
    if mask_layer.dtype != bool or mask_layer.ndim != 3:
        raise UsageError(f"layer mask must be boolean [Cout, Cin, F], got {mask_layer.dtype} shape {mask_layer.shape}")
    num_pes = _check_count("num_pes", num_pes)
    if method not in GROUPINGS:
        raise UnknownNameError("grouping", str(method), GROUPINGS)
    cout, cin, num_freq = mask_layer.shape
    per_channel = -(-cout // num_pes)
    slots = per_channel * num_pes
    # order[i, s] = output channel in slot s of input channel i (or -1)
    nnz = mask_layer.sum(axis=2, dtype=np.int64).T  # [Cin, Cout]
    if method == "fixed":
        j_order = np.broadcast_to(np.arange(cout, dtype=np.int64), (cin, cout))
    else:
        j_order = np.argsort(-nnz, axis=1, kind="stable").astype(np.int64)
    order = np.full((cin, slots), -1, dtype=np.int64)
    order[:, :cout] = j_order
    if method == "bank_aware":
        if bank_of is None or banks is None:
            raise UsageError("grouping 'bank_aware' needs the bank map (bank_of) and the number of banks")
        banks = _check_count("banks", banks)
        ports = _check_count("ports", ports)
        bank_of = np.asarray(bank_of, dtype=np.int64)
        if bank_of.shape != (num_freq,) or (num_freq and (bank_of.min() < 0 or bank_of.max() >= banks)):
            raise UsageError(f"bank_of must hold {num_freq} banks in 0..{banks - 1}")
        kb = np.empty((cin, cout, banks), dtype=np.int16)  # reads per bank, channel-major for locality
        for b in range(banks):
            kb[:, :, b] = mask_layer[:, :, bank_of == b].sum(axis=2).T
        bank_aware_swaps(order, kb, np.ascontiguousarray(nnz), num_pes, ports, int(passes))
    i_idx = np.broadcast_to(np.arange(cin, dtype=np.int64)[:, None], (cin, slots))
    groups = np.where(order >= 0, order * cin + i_idx, -1).reshape(cin * per_channel, num_pes)
    flat = mask_layer.reshape(cout * cin, num_freq)
    grouped = np.zeros((groups.shape[0], num_pes, num_freq), dtype=bool)
    live = groups >= 0
    grouped[live] = flat[groups[live]]
    return groups, grouped


@dataclass(frozen=True, eq=False)
class LayerSchedule:
    """The schedule of one layer's kernel groups, with the grouping that produced it."""

    schedule: Schedule
    groups: np.ndarray  # int [G, P] flat kernel ids j*Cin + i, -1 idle
    grouping: str
    out_channels: int
    in_channels: int

    @property
    def cycles(self) -> int:
        """Cycles to stream every kernel group once (one input tile)."""
        return self.schedule.total_cycles

    @property
    def lower_bound(self) -> int:
        return self.schedule.total_lower_bound

    @property
    def nnz(self) -> int:
        return self.schedule.nnz

    @property
    def pe_utilization(self) -> float:
        return self.schedule.pe_utilization


def schedule_layer(mask_layer, num_pes: int, banks: int, ports: int = 1, broadcast: bool = False,
                   bank_map="auto", method: str | None = None, grouping: str = "balanced") -> LayerSchedule:
    """Group one layer's kernels (bool [Cout, Cin, F]) and schedule every group.

    ``bank_map='auto'`` balances the layer's read load over the banks (one map per layer).
    """
    mask_layer = np.asarray(mask_layer)
    if mask_layer.dtype != bool or mask_layer.ndim != 3:
        raise UsageError(f"layer mask must be boolean [Cout, Cin, F], got {mask_layer.dtype} shape {mask_layer.shape}")
    bank_map = resolve_bank_map(bank_map, mask_layer, _check_count("banks", banks))
    groups, grouped = group_kernels(mask_layer, num_pes, grouping, bank_of=bank_map, banks=banks, ports=ports)
    check_mask(grouped)
    sched = schedule_groups(grouped, banks, ports, broadcast, bank_map, method)
    cout, cin, _ = np.asarray(mask_layer).shape
    return LayerSchedule(sched, groups, grouping, cout, cin)
