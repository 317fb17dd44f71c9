"""CPU seconds of one VGG16 exploration point (``flexspec.explore.adapter.simulate``: the
flexible dataflow, its stream analyses and the cycle simulation), for before/after comparisons of
the simulator: run it with ``PYTHONPATH`` at each source tree, interleaved, on the same points.

    python benchmarks/bench_explore_point.py DEVICE PES BANKS PORTS DENSITY [--warm] [--prof]

VGG16 at 224 x 224, N = 8, synthesized kernels (seed 0, layer scope) as the exploration makes them
(pickled in ``$TMPDIR/flexspec_point_masks_DENSITY.pkl`` after the first run, so both trees see
the same masks), A = fit.  The numba LPT kernel is compiled before the timed call; schedules are
cold unless ``--warm`` (then the same point is simulated once first).  Prints the CPU seconds and
the simulated latency (whole network, convolutions), which must be equal across trees."""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
import time

import numpy as np

from flexspec.accel._lpt import lpt_span
from flexspec.explore import adapter as ad


def main(argv) -> int:
    dev_name, pes, banks, ports, density = argv[0], int(argv[1]), int(argv[2]), int(argv[3]), float(argv[4])
    net = ad.network_of("vgg16")
    path = os.path.join(tempfile.gettempdir(), f"flexspec_point_masks_{density}.pkl")
    if os.path.exists(path):
        with open(path, "rb") as f:
            masks = pickle.load(f)
    else:
        masks = ad.kernels_of(net, 8, density, 0, "layer")[0]
        with open(path, "wb") as f:
            pickle.dump(masks, f)
    dev = ad.device_of(dev_name)
    config, _ = ad.design_of(dev, 8, "fit", pes, banks, ports, False)
    sched = ad.DiskScheduleCache(None)
    lpt_span(np.array([3, 2, 1], dtype=np.int64), 2)  # compile outside the timing
    if "--warm" in argv:
        ad.simulate(net, dev, config, masks, sched)
    t = time.process_time()
    if "--prof" in argv:
        import cProfile  # only when profiling

        prof = cProfile.Profile()
        result = prof.runcall(ad.simulate, net, dev, config, masks, sched)
        prof.dump_stats(os.path.join(tempfile.gettempdir(), "flexspec_point.prof"))
    else:
        result = ad.simulate(net, dev, config, masks, sched)
    cpu = time.process_time() - t
    fig = ad.exact_figures(result)
    print(dev_name, pes, banks, ports, density, "arrays", config.arrays, f"cpu_s {cpu:.2f}",
          fig.get("latency_seconds"), fig.get("conv_latency_seconds"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
