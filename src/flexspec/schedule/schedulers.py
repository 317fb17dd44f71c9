"""Schedulers of sparse kernel reads: ``schedule_groups`` and its four methods.

* ``inorder`` (naive baseline): each PE walks its non-zeros in index order.  Every cycle every
  unfinished PE offers its next non-zero; each bank's ports serve the requests in PE order
  (with broadcast, a request for an address the bank already serves this cycle is served on
  the same port); a PE not served stalls and retries the same non-zero next cycle while the
  others advance (per-PE stall: the stronger of the two naive baselines).
* ``greedy``: cycle-by-cycle list scheduling (see ``_kernels.greedy_groups``).
* ``optimal`` (no broadcast): bipartite edge colouring of the multigraph PEs x bank ports, one
  edge per non-zero, bank ``b``'s reads dealt round-robin over its ``R`` ports.  Every vertex has
  degree <= the lower bound ``max(max_p nnz(p), max_b ceil(reads(b)/R))``, and by Konig's
  edge-colouring theorem a bipartite multigraph is edge-coloured with max-degree colours
  (alternating-path recolouring); colour = cycle.  So the makespan equals the lower bound:
  optimal.  With ``broadcast=True`` the same schedule is valid, and the reported bound is the
  (smaller) broadcast bound.
* ``broadcast`` (implies ``broadcast=True``): greedy per-cycle cover of PEs by served addresses
  (``_kernels.broadcast_groups``), kept per group only where it beats the optimal
  no-broadcast colouring (which is also a valid broadcast schedule).  It is rerun with up to
  ``BROADCAST_TRIES`` tie-break variants, each time only on the groups still above the bound,
  keeping the best per group.  Needs P <= 64; with more PEs it falls back to the colouring.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputFileError, UnknownNameError, UsageError
from ..spectral.geometry import fft_size_from_frequencies
from . import _kernels
from .bounds import lower_bounds
from .model import METHODS, Schedule, _check_count, resolve_bank_map

#: Runs of the broadcast-aware heuristic per group (tie-break variants); the best one is kept.
BROADCAST_TRIES = 32


def check_mask(mask, path=None, field: str = "mask") -> np.ndarray:
    """A kernel mask must be a boolean [G, P, F] array with F = N*(N//2+1) and P >= 1."""

    def fail(message):
        if path is not None:
            raise InputFileError(path, message, field)
        raise UsageError(f"{field}: {message}")

    if not isinstance(mask, np.ndarray):
        fail("must be a numpy array")
    if mask.dtype != bool:
        fail(f"must be a boolean array, got dtype {mask.dtype}")
    if mask.ndim != 3:
        fail(f"must have rank 3 [groups, PEs, frequencies], got shape {mask.shape}")
    if mask.shape[1] < 1:
        fail("needs at least one PE per group")
    try:
        fft_size_from_frequencies(mask.shape[2])
    except UsageError as exc:
        fail(str(exc))
    return mask


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(start, start + length) for each pair (vectorized)."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    shift = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return np.arange(total, dtype=np.int64) + shift


def schedule_groups(mask, banks: int, ports: int = 1, broadcast: bool = False, bank_map="mod",
                    method: str | None = None, broadcast_tries: int = BROADCAST_TRIES) -> Schedule:
    """Schedule the reads of every kernel group of ``mask`` (bool [G, P, F]).

    ``bank_map``: 'mod', 'auto' (load-balanced over the whole mask) or an int array [F].
    ``method``: 'optimal' | 'greedy' | 'inorder' | 'broadcast'; default 'broadcast' when
    ``broadcast`` else 'optimal'.  Method 'broadcast' implies ``broadcast=True``;
    ``broadcast_tries``: runs of its heuristic (tie-break variants), the best kept per group.
    """
    mask = check_mask(mask)
    banks = _check_count("banks", banks)
    ports = _check_count("ports", ports)
    if method is None:
        method = "broadcast" if broadcast else "optimal"
    if method not in METHODS:
        raise UnknownNameError("scheduling method", str(method), METHODS)
    if method == "broadcast":
        broadcast = True
    broadcast = bool(broadcast)
    bank_of = resolve_bank_map(bank_map, mask, banks)
    num_groups, num_pes, num_freq = mask.shape

    counts = mask.sum(axis=(1, 2), dtype=np.int64)
    offsets = np.zeros(num_groups + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    lb = lower_bounds(mask, bank_of, banks, ports, broadcast)
    mask_u8 = mask.view(np.uint8)

    def run(kind, variant=0, sub=None):
        m = mask_u8 if sub is None else mask_u8[sub]
        c = counts if sub is None else counts[sub]
        offs = offsets if sub is None else np.concatenate(([0], np.cumsum(c)))
        total = int(offs[-1])
        out_pe = np.empty(total, np.int32)
        out_index = np.empty(total, np.int32)
        out_cycle = np.empty(total, np.int32)
        out_cycles = np.zeros(m.shape[0], np.int64)
        ch = _kernels._chunks(m.shape[0])
        if m.shape[0]:
            if kind == "optimal":
                lb_plain = lb if not broadcast else lower_bounds(mask, bank_of, banks, ports, False)
                max_colours = int(max(1, lb_plain.max(initial=0)))
                _kernels.colour_groups(m, bank_of, ports, banks, lb_plain, offs, max_colours, ch,
                                       out_pe, out_index, out_cycle, out_cycles)
            elif kind == "inorder":
                _kernels.inorder_groups(m, bank_of, ports, banks, broadcast, offs, ch,
                                        out_pe, out_index, out_cycle, out_cycles)
            elif kind == "greedy":
                _kernels.greedy_groups(m, bank_of, ports, banks, broadcast, offs, ch,
                                       out_pe, out_index, out_cycle, out_cycles)
            else:
                _kernels.broadcast_groups(m, bank_of, ports, banks, offs, ch,
                                          out_pe, out_index, out_cycle, out_cycles, variant)
        return out_pe, out_index, out_cycle, out_cycles

    if method == "broadcast":
        # the colouring is a valid broadcast schedule; the heuristic (one run per tie-break
        # variant, each only on the groups still above the bound) replaces it where it is better
        pe, index, cycle, cycles = run("optimal")
        for variant in range(broadcast_tries if num_pes <= 64 else 0):
            sub = np.flatnonzero(cycles > lb)
            if sub.size == 0:
                break
            pe2, index2, cycle2, cycles2 = run("broadcast", variant, sub)
            better = cycles2 < cycles[sub]
            if better.any():
                sub_offs = np.concatenate(([0], np.cumsum(counts[sub])))
                src = _ranges(sub_offs[:-1][better], counts[sub][better])
                dst = _ranges(offsets[sub][better], counts[sub][better])
                pe[dst], index[dst], cycle[dst] = pe2[src], index2[src], cycle2[src]
                cycles[sub[better]] = cycles2[better]
    else:
        pe, index, cycle, cycles = run(method)

    group = np.repeat(np.arange(num_groups, dtype=np.int32), counts)
    return Schedule(
        group=group, pe=pe, index=index, cycle=cycle, bank_of=bank_of, cycles=cycles, lower_bound=lb,
        banks=banks, ports=ports, broadcast=broadcast, method=method, num_pes=num_pes, num_frequencies=num_freq,
    )
