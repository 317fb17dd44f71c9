"""Small random layers for the layer-engine tests (calibrated on other random inputs)."""

from __future__ import annotations

import numpy as np

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.functional import calibrate_layer
from flexspec.rtl.engine_case import engine_case
from flexspec.spectral.prune import magnitude_mask
from flexspec.spectral.sparse import SparseSpectralKernels
from flexspec.spectral.transform import spectral_kernels


def small_case(n=8, cin=2, cout=3, height=10, width=9, pes=4, banks=4, ports=1, density=0.4, seed=1, padding=1):
    """(case, ssk, x, bias): a random pruned layer, formats calibrated on four other random inputs."""
    rng = np.random.default_rng(seed)
    wf = spectral_kernels(rng.normal(size=(cout, cin, 3, 3)), n)
    ssk = SparseSpectralKernels.from_dense(wf, magnitude_mask(wf, density), 3)
    bias = rng.normal(size=cout) * 0.3
    cfg = AcceleratorConfig(arrays=1, pes=pes, banks=banks, ports=ports, fft_size=n)
    quant = calibrate_layer(rng.normal(size=(4, cin, height, width)), ssk, padding, bias, data_bits=16, acc_bits=48)
    x = rng.normal(size=(cin, height, width))
    return engine_case(ssk, x, quant, cfg, bias, padding), ssk, x, bias
