"""numba kernel: longest-processing-time-first assignment of kernel groups to PE arrays."""

from __future__ import annotations

import numpy as np
from numba import njit

#: A run of equal groups is dealt as a batch (:func:`lpt_span`) when it can be and its groups x the
#: arrays reach this many steps of the one-by-one scan (below it, the scan is faster than the sort).
BATCH_STEPS = 4096


@njit(cache=True)
def lpt_span(cyc_desc, bins):
    """Makespan of ``cyc_desc`` (int64, sorted decreasing) dealt LPT-first onto ``bins`` arrays:
    each group goes to the currently least-loaded array (lowest index on ties).

    The same assignment as dealing the groups one by one (a test compares it with that loop), in
    less time: a run of ``c`` equal groups of ``x > 0`` cycles, while every load lies within less
    than ``x`` of the least (max - min < x), is dealt at once.  Then the arrays in (load, index)
    order take one group each, round after round (an array that took one lies above every other,
    so the order stays the same): c // bins groups each, and one more for the first c % bins
    arrays in that order.  Group makespans are small integers with many repeats, so a layer's tens
    of thousands of groups cost a few batches instead of one scan of the arrays each."""
    if bins <= 0:
        return 0
    load = np.zeros(bins, dtype=np.int64)
    top = 0  # the largest load (exact while x > 0: loads only grow)
    n = cyc_desc.size
    pos = 0
    while pos < n:
        x = cyc_desc[pos]
        end = pos
        while end < n and cyc_desc[end] == x:
            end += 1
        c = end - pos
        pos = end
        if x == 0:
            continue  # adds nothing to any load
        while c > 0:
            k = 0
            for b in range(1, bins):
                if load[b] < load[k]:
                    k = b
            if x > 0 and c * bins >= BATCH_STEPS and top - load[k] < x:
                order = np.argsort(load * bins + np.arange(bins))  # (load, index) order
                load += (c // bins) * x
                load[order[:c % bins]] += x
                top = load.max()
                break
            load[k] += x
            top = max(top, load[k])
            c -= 1
    return load.max()
