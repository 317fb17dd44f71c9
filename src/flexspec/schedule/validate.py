"""Independent validator of schedules: plain vectorized numpy, shares no code with the schedulers.

Checks, in order, and raises :class:`ScheduleError` on the first violation:

1. shapes and metadata agree with the mask (groups, PEs, frequencies, banks, ports);
2. every entry is in range and the entries are sorted by (group, cycle, pe);
3. every read is a kept (group, PE, frequency) and every kept one is read exactly once;
4. no PE reads twice in one cycle;
5. no bank serves more than R reads in a cycle (without broadcast) or more than R distinct
   addresses (with broadcast);
6. ``cycles[g]`` is the true makespan of group g (last cycle + 1; 0 for an empty group);
7. ``lower_bound[g]`` equals the bound recomputed here (from first principles) and is <= cycles[g].
"""

from __future__ import annotations

import numpy as np

from .model import Schedule, ScheduleError


def _fail(message: str):
    raise ScheduleError(f"invalid schedule: {message}")


def _first(keys_bad: np.ndarray) -> int:
    return int(np.flatnonzero(keys_bad)[0])


def _recomputed_bound(mask: np.ndarray, bank_of: np.ndarray, banks: int, ports: int, broadcast: bool):
    num_groups = mask.shape[0]
    pe_max = mask.sum(axis=2).max(axis=1) if mask.shape[1] else np.zeros(num_groups, np.int64)
    g_idx, _, f_idx = np.nonzero(mask)
    if broadcast:
        # distinct (group, frequency) pairs requested, counted per (group, bank)
        keys = np.unique(g_idx.astype(np.int64) * mask.shape[2] + f_idx)
        g_idx, f_idx = keys // mask.shape[2], keys % mask.shape[2]
    per_bank = np.zeros((num_groups, banks), dtype=np.int64)
    np.add.at(per_bank, (g_idx, bank_of[f_idx]), 1)
    bank_max = (per_bank.max(axis=1) + ports - 1) // ports if banks else np.zeros(num_groups, np.int64)
    return np.maximum(pe_max, bank_max)


def validate(schedule: Schedule, mask) -> None:
    """Raise ScheduleError describing the first rule ``schedule`` breaks for ``mask`` (bool [G, P, F])."""
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.ndim != 3:
        _fail(f"mask must be boolean [G, P, F], got {mask.dtype} shape {mask.shape}")
    num_groups, num_pes, num_freq = mask.shape
    s = schedule
    if s.num_pes != num_pes:
        _fail(f"schedule has {s.num_pes} PEs per group, mask has {num_pes}")
    if s.num_frequencies != num_freq:
        _fail(f"schedule has {s.num_frequencies} frequency positions, mask has {num_freq}")
    cycles = np.asarray(s.cycles)
    bound = np.asarray(s.lower_bound)
    if cycles.shape != (num_groups,) or bound.shape != (num_groups,):
        _fail(f"cycles/lower_bound must have one entry per group ({num_groups})")
    bank_of = np.asarray(s.bank_of).astype(np.int64)
    if bank_of.shape != (num_freq,):
        _fail(f"bank_of must have {num_freq} entries, got shape {bank_of.shape}")
    if s.banks < 1 or s.ports < 1:
        _fail(f"banks ({s.banks}) and ports ({s.ports}) must be >= 1")
    if num_freq and (bank_of.min() < 0 or bank_of.max() >= s.banks):
        _fail(f"bank_of holds a bank outside 0..{s.banks - 1}")

    arrays = [np.asarray(a) for a in (s.group, s.pe, s.index, s.cycle)]
    n = arrays[0].size
    if any(a.ndim != 1 or a.size != n or a.dtype.kind not in "iu" for a in arrays):
        _fail("group, pe, index, cycle must be 1-D integer arrays of the same length")
    group, pe, index, cycle = (a.astype(np.int64) for a in arrays)
    for name, arr, hi in (("group", group, num_groups), ("pe", pe, num_pes), ("index", index, num_freq)):
        bad = (arr < 0) | (arr >= hi)
        if bad.any():
            i = _first(bad)
            _fail(f"read {i}: {name} {arr[i]} outside 0..{hi - 1}")
    if (cycle < 0).any():
        i = _first(cycle < 0)
        _fail(f"read {i}: negative cycle {cycle[i]}")

    # 2. sorted by (group, cycle, pe)
    if n > 1:
        span_c = int(cycle.max()) + 1
        key = (group * span_c + cycle) * num_pes + pe
        if (np.diff(key) < 0).any():
            i = _first(np.diff(key) < 0) + 1
            _fail(f"reads not sorted by (group, cycle, pe) at entry {i}")

    # 3. reads == kept non-zeros, each exactly once
    if n and not mask[group, pe, index].all():
        i = _first(~mask[group, pe, index])
        _fail(f"read {i}: group {group[i]} PE {pe[i]} frequency {index[i]} is not a kept non-zero")
    read_key = (group * num_pes + pe) * num_freq + index
    uniq, counts = np.unique(read_key, return_counts=True)
    if (counts > 1).any():
        k = int(uniq[counts > 1][0])
        _fail(f"group {k // (num_pes * num_freq)} PE {k // num_freq % num_pes} reads frequency "
              f"{k % num_freq} {int(counts[counts > 1][0])} times")
    kept = int(mask.sum())
    if uniq.size != kept:
        missing = np.setdiff1d(np.flatnonzero(mask.reshape(-1)), uniq)
        k = int(missing[0])
        _fail(f"{kept - uniq.size} kept non-zeros never read, first: group {k // (num_pes * num_freq)} "
              f"PE {k // num_freq % num_pes} frequency {k % num_freq}")

    if n:
        span_c = int(cycle.max()) + 1
        # 4. one read per PE per cycle
        slot = (group * span_c + cycle) * num_pes + pe
        uniq, counts = np.unique(slot, return_counts=True)
        if (counts > 1).any():
            k = int(uniq[counts > 1][0])
            _fail(f"group {k // (num_pes * span_c)} PE {k % num_pes} reads {int(counts[counts > 1][0])} "
                  f"times in cycle {k // num_pes % span_c}")
        # 5. bank ports
        bank = bank_of[index]
        if s.broadcast:
            addr = np.unique((group * span_c + cycle) * num_freq + index)  # distinct addresses per cycle
            g_c, f = addr // num_freq, addr % num_freq
            port_key = g_c * s.banks + bank_of[f]
            what = "distinct addresses"
        else:
            port_key = (group * span_c + cycle) * s.banks + bank
            what = "reads"
        uniq, counts = np.unique(port_key, return_counts=True)
        if (counts > s.ports).any():
            k = int(uniq[counts > s.ports][0])
            gc = k // s.banks
            _fail(f"group {gc // span_c} cycle {gc % span_c}: bank {k % s.banks} serves "
                  f"{int(counts[counts > s.ports][0])} {what} with {s.ports} port(s)")

    # 6. true makespan
    true_cycles = np.zeros(num_groups, dtype=np.int64)
    if n:
        np.maximum.at(true_cycles, group, cycle + 1)
    if not np.array_equal(true_cycles, cycles):
        g = _first(true_cycles != cycles)
        _fail(f"group {g}: reported {int(cycles[g])} cycles, true makespan is {int(true_cycles[g])}")

    # 7. bound
    ref = _recomputed_bound(mask, bank_of, s.banks, s.ports, s.broadcast)
    if not np.array_equal(ref, bound):
        g = _first(ref != bound)
        _fail(f"group {g}: reported lower bound {int(bound[g])}, recomputed {int(ref[g])}")
    if (bound > cycles).any():
        g = _first(bound > cycles)
        _fail(f"group {g}: {int(cycles[g])} cycles is below the lower bound {int(bound[g])}")
