"""Lower bounds on the makespan of one kernel group (vectorized numpy).

Without broadcast every read of bank ``b`` takes one of its ``R`` ports for one cycle, and
every PE reads at most once per cycle, so

    cycles >= max( max_p nnz(p),  max_b ceil(reads(b) / R) ).

Bipartite edge colouring reaches it (Konig's theorem; see :mod:`.schedulers`).

With broadcast, the PEs reading one address in one cycle share a port, so bank ``b`` needs at
least one port-cycle per *distinct* address requested from it:

    cycles >= max( max_p nnz(p),  max_b ceil(distinct(b) / R) ).

This bound is not always reachable; the broadcast-aware scheduler reports it next to its result.
"""

from __future__ import annotations

import numpy as np


def _bank_onehot(bank_of: np.ndarray, banks: int) -> np.ndarray:
    onehot = np.zeros((bank_of.size, banks), dtype=np.int64)
    onehot[np.arange(bank_of.size), bank_of] = 1
    return onehot


def pe_loads(mask: np.ndarray) -> np.ndarray:
    """Non-zeros per PE: int64 [G, P]."""
    return mask.sum(axis=2, dtype=np.int64)


def bank_loads(mask: np.ndarray, bank_of: np.ndarray, banks: int, broadcast: bool = False) -> np.ndarray:
    """Port-cycles each bank needs at least: reads (or distinct addresses with broadcast), int64 [G, B]."""
    if broadcast:
        per_freq = mask.any(axis=1).astype(np.int64)  # [G, F]
    else:
        per_freq = mask.sum(axis=1, dtype=np.int64)
    return per_freq @ _bank_onehot(np.asarray(bank_of, dtype=np.int64), banks)


def lower_bounds(mask: np.ndarray, bank_of, banks: int, ports: int, broadcast: bool = False) -> np.ndarray:
    """Lower bound on the makespan of every group: int64 [G]."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    pe = pe_loads(mask).max(axis=1, initial=0)
    bank = -(-bank_loads(mask, bank_of, banks, broadcast) // ports)
    return np.maximum(pe, bank.max(axis=1, initial=0)).astype(np.int64)
