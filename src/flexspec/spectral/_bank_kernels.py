"""numba kernel of the bank-capped projection (:func:`flexspec.spectral.prune.bank_balanced_mask`)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def _take(keep, count, load, k, u, sizes, bank_a, bank_b):
    keep[k, u] = True
    count[k] += sizes[u]
    if bank_a[u] == bank_b[u]:
        load[bank_a[u]] += sizes[u]
    else:
        load[bank_a[u]] += 1
        load[bank_b[u]] += 1


@njit(cache=True)
def capped_group_keep(scores, sizes, bank_a, bank_b, target, cap, banks):
    """Units kept in one kernel group: bool [K, U] from scores float [K, U] (the K kernels of the
    group), unit sizes int [U] (1 or 2 stored entries), the banks of each unit's two entries
    (equal for a unit of one entry), ``target`` entries per kernel and ``cap`` reads per bank.

    Greedy, largest score first (ties by kernel, then unit): a unit is kept when its kernel has
    room and neither of its banks would pass the cap; a second pass fills each kernel still short
    of ``target`` with the unit that loads its busiest bank least (then the largest score), so
    every kernel keeps ``target`` entries (``target - 1`` only where just a pair would fit)."""
    k_count, u_count = scores.shape
    keep = np.zeros((k_count, u_count), dtype=np.bool_)
    order = np.argsort(-scores.ravel(), kind="mergesort")
    count = np.zeros(k_count, dtype=np.int64)
    load = np.zeros(banks, dtype=np.int64)
    for e in order:  # pass 1: largest first, within the cap
        k, u = e // u_count, e % u_count
        a, b = bank_a[u], bank_b[u]
        if count[k] + sizes[u] > target:
            continue
        if a == b:
            if load[a] + sizes[u] > cap:
                continue
        elif load[a] + 1 > cap or load[b] + 1 > cap:
            continue
        _take(keep, count, load, k, u, sizes, bank_a, bank_b)
    for k in range(k_count):  # pass 2: fill short kernels, least-loaded banks first, then largest score
        while count[k] < target:
            best, best_load, best_score = -1, 1 << 60, -1.0
            for u in range(u_count):
                if keep[k, u] or count[k] + sizes[u] > target:
                    continue
                a, b = bank_a[u], bank_b[u]
                after = load[a] + sizes[u] if a == b else max(load[a], load[b]) + 1
                if after < best_load or (after == best_load and scores[k, u] > best_score):
                    best, best_load, best_score = u, after, scores[k, u]
            if best < 0:
                break
            _take(keep, count, load, k, best, sizes, bank_a, bank_b)
    return keep
