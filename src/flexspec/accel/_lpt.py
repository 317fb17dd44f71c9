"""numba kernel: longest-processing-time-first assignment of kernel groups to PE arrays."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def lpt_span(cyc_desc, bins):
    """Makespan of ``cyc_desc`` (int64, sorted decreasing) dealt LPT-first onto ``bins`` arrays:
    each group goes to the currently least-loaded array (lowest index on ties)."""
    load = np.zeros(bins, dtype=np.int64)
    for x in cyc_desc:
        k = 0
        for b in range(1, bins):
            if load[b] < load[k]:
                k = b
        load[k] += x
    return load.max() if bins > 0 else 0
