"""The as-built network design in the search: A replicated layer engines, each with its own FFT and
IFFT (``engines=PER_ARRAY``): the most arrays that fit, checked by brute force over A."""

from __future__ import annotations

from dataclasses import replace

import pytest

from flexspec.accel.arch import AcceleratorConfig, resources
from flexspec.accel.search import DATAFLOW_MEMORY, PER_ARRAY, candidates, max_arrays, one_more_array, with_arrays
from flexspec.devices import load_device
from flexspec.errors import DoesNotFitError


def _fits(cfg, device) -> bool:
    try:
        resources(cfg, device)
        return True
    except DoesNotFitError:
        return False


@pytest.mark.parametrize("device", ["zcu102", "vc709"])
def test_per_array_engines_most_arrays_that_fit_by_brute_force(device):
    device = load_device(device)
    (cfg,) = candidates(device, 8, (8,), PER_ARRAY, ((10, 1),), (False,), readout_rows=(1,))
    assert cfg.fft_engines == cfg.ifft_engines == cfg.arrays
    base = AcceleratorConfig(pes=8, banks=10, ports=1, fft_size=8, readout_rows=1)
    a = 1
    while _fits(with_arrays(base, a + 1, True), device):  # every A up to the first that does not fit
        a += 1
    assert cfg.arrays == a == max_arrays(base, device, per_array=True)
    assert one_more_array(cfg, device, per_array=True)  # one more array with its engines goes over a limit
    # the shared pool of 8 + 8 engines fits at least as many arrays as one FFT + IFFT per array at this size
    # (as many here: the output FIFOs' block RAM, charged per array in both structures, leaves the pool's next
    # array under the dataflow's minimum of on-chip memory)
    pool = replace(base, fft_engines=8, ifft_engines=8)
    assert max_arrays(pool, device) >= a
    assert set(one_more_array(with_arrays(pool, max_arrays(pool, device)), device)) & {"bram_bits", DATAFLOW_MEMORY}
