"""Spectral kernels and overlap-and-add convolution.

numpy only at import; the torch layer lives in :mod:`flexspec.spectral.torch_ops`.
"""

from .geometry import fft_size_from_frequencies, half_width, num_frequencies, num_tiles, tile_grid, tile_size
from .oaa import oaa_conv2d, oaa_conv2d_spectral
from .transform import spatial_kernels, spatial_support, spectral_kernels

__all__ = [
    "fft_size_from_frequencies", "half_width", "num_frequencies", "num_tiles", "tile_grid", "tile_size",
    "oaa_conv2d", "oaa_conv2d_spectral", "spatial_kernels", "spatial_support", "spectral_kernels",
]
