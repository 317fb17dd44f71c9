"""Brute-force reference for tiny scheduling instances (shares no code with flexspec.schedule)."""

from __future__ import annotations

from functools import cache

import numpy as np


def brute_force_makespan(mask_group: np.ndarray, bank_of, ports: int, broadcast: bool) -> int:
    """Minimum cycles for one group (bool [P, F]) by shortest path over sets of remaining reads."""
    reads = [(int(p), int(f)) for p, f in zip(*np.nonzero(mask_group), strict=True)]
    n = len(reads)
    bank_of = [int(b) for b in bank_of]

    def feasible(subset: int) -> bool:
        pes, per_bank = set(), {}
        for k in range(n):
            if subset >> k & 1:
                p, f = reads[k]
                if p in pes:
                    return False
                pes.add(p)
                per_bank.setdefault(bank_of[f], []).append(f)
        for addrs in per_bank.values():
            used = len(set(addrs)) if broadcast else len(addrs)
            if used > ports:
                return False
        return True

    @cache
    def best(state: int) -> int:
        if state == 0:
            return 0
        result = n + 1
        sub = state
        while sub:
            if feasible(sub):
                result = min(result, 1 + best(state & ~sub))
            sub = (sub - 1) & state
        return result

    return best((1 << n) - 1)
