"""Accelerator architecture and its resource model.

The machine (one configuration = :class:`AcceleratorConfig`):

* ``arrays`` (A) parallel PE arrays, each of ``pes`` (P) PEs.  All A arrays run the *same*
  kernel group (P sparse kernels of one input channel, one per PE) in lockstep, each on a
  different input tile: A tiles are in flight.  A PE holds one sparse kernel and performs one
  complex multiply-accumulate per cycle.
* Each array has a tile buffer of ``banks`` (B) banks with ``ports`` (R) read ports each;
  frequency ``f`` of the current tile lives in bank ``f % B`` (double buffered: the next tile
  is written while the current one is read).
* ``fft_engines`` / ``ifft_engines`` pipelined 2-D (i)FFT engines, each accepting one N x N
  tile every N cycles (one fully parallel N-point row FFT and one column FFT per cycle).
* ``onchip_fraction`` of the rest of on-chip memory is the budget of the dataflow's buffers
  (kernel block, input-tile block, accumulators, overlap-add borders, resident activations);
  how it is split between them is chosen per layer by ``flexspec.dataflow`` (the blocking),
  which dominates any fixed split.  The remainder is routing/control slack and the
  second half of the double-buffered off-chip streams.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..errors import DoesNotFitError, UsageError
from ..kernel_format import DEFAULT_ACC_BITS, KernelFormat
from ..spectral.geometry import num_frequencies  # noqa: F401  (re-exported)
from .devices import Device


@dataclass(frozen=True)
class AcceleratorConfig:
    arrays: int = 32
    pes: int = 32
    banks: int = 16
    ports: int = 2
    fft_engines: int = 16
    ifft_engines: int = 16
    fft_size: int = 8
    data_bits: int = 16
    acc_bits: int = DEFAULT_ACC_BITS
    onchip_fraction: float = 0.5
    broadcast: bool = False
    pe_pipeline_cycles: int = 8  # multiplier + adder pipeline depth of a PE

    def __post_init__(self):
        for key in ("arrays", "pes", "banks", "ports", "fft_engines", "ifft_engines", "fft_size"):
            v = getattr(self, key)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise UsageError(f"accelerator config: {key} must be a positive integer, got {v!r}")
        if self.banks > num_frequencies(self.fft_size):
            raise UsageError(f"accelerator config: {self.banks} banks exceed the {num_frequencies(self.fft_size)} "
                             f"frequencies of an N={self.fft_size} tile")
        if not 0.05 <= self.onchip_fraction <= 0.95:
            raise UsageError("accelerator config: onchip_fraction must be in [0.05, 0.95]")
        if self.data_bits < 2 or self.acc_bits < 2 * self.data_bits + 1:
            raise UsageError("accelerator config: need data_bits >= 2 and acc_bits >= 2*data_bits+1")

    @property
    def num_freq(self) -> int:
        return num_frequencies(self.fft_size)

    @property
    def kernel_format(self) -> KernelFormat:
        """How this design stores kernel entries: data_bits real and imaginary parts, ceil(log2 F) index."""
        return KernelFormat(self.data_bits)

    @property
    def pe_count(self) -> int:
        return self.arrays * self.pes

    def to_dict(self) -> dict:
        return asdict(self)


def nontrivial_twiddles(fft_size: int) -> int:
    """Complex multiplications by twiddles other than +-1, +-j in a radix-2 N-point FFT."""
    if fft_size & (fft_size - 1):
        return fft_size * max(1, math.ceil(math.log2(fft_size)))  # non power of two: generous
    count, n = 0, fft_size
    span = 2
    while span <= n:
        for k in range(span // 2):
            e = k * (n // span)  # exponent of W_n
            if e % (n // 4 if n >= 4 else 1) != 0:
                count += n // span
        span *= 2
    return count


@dataclass(frozen=True)
class Resources:
    dsp_pe: int
    dsp_fft: int
    tile_buffer_bits: int
    fft_buffer_bits: int
    dataflow_bits: int  # budget of the dataflow's kernel / activation / accumulator buffers
    bram_bits_used: int
    uram_bits_used: int
    device_dsp: int
    device_bram_bits: int
    device_uram_bits: int

    @property
    def dsp_total(self) -> int:
        return self.dsp_pe + self.dsp_fft

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dsp_total"] = self.dsp_total
        d["dataflow_bytes"] = self.dataflow_bits // 8
        return d


def _block_bits(device: Device) -> int:
    return 20480 if device.vendor.lower().startswith(("intel", "altera")) else 18432


def resources(config: AcceleratorConfig, device: Device) -> Resources:
    """DSPs and memory of ``config`` on ``device``; raises DoesNotFitError naming need vs. have.

    The PE arrays and FFT engines take DSPs; tile-bank buffers and FFT transposition buffers
    take block RAM (rounded up to whole blocks, one per bank at least); the dataflow's
    buffers get ``config.onchip_fraction`` of what memory is left.
    """
    dsp_pe = config.pe_count * device.dsp_per_complex_mac
    dsp_fft = (config.fft_engines + config.ifft_engines) * 2 * nontrivial_twiddles(config.fft_size) \
        * device.dsp_per_complex_mac
    block = _block_bits(device)
    words = 2 * math.ceil(config.num_freq / config.banks)  # double buffered
    bank_bits = math.ceil(words * 2 * config.data_bits / block) * block
    tile_buffer_bits = config.arrays * config.banks * bank_bits
    n2 = config.fft_size * config.fft_size
    fft_buffer_bits = (config.fft_engines * 2 * n2 * 2 * config.data_bits
                       + config.ifft_engines * 2 * n2 * 2 * config.acc_bits)
    fft_buffer_bits = math.ceil(fft_buffer_bits / block) * block
    fixed = tile_buffer_bits + fft_buffer_bits
    problems = []
    if dsp_pe + dsp_fft > device.dsp_slices:
        problems.append(f"{dsp_pe + dsp_fft} DSPs ({dsp_pe} for {config.arrays}x{config.pes} PEs at "
                        f"{device.dsp_per_complex_mac} per complex MAC, {dsp_fft} for FFT engines) but the "
                        f"device has {device.dsp_slices}")
    if fixed > device.bram_bits:
        problems.append(f"{fixed} block-RAM bits for tile banks and FFT buffers but the device has "
                        f"{device.bram_bits}")
    left = int((device.onchip_bits - fixed) * config.onchip_fraction)
    if not problems and left < 8 * 1024 * 1024:
        problems.append(f"only {left} on-chip bits left for the dataflow buffers; at least 8 Mbit needed")
    if problems:
        raise DoesNotFitError(f"design A={config.arrays} P={config.pes} B={config.banks} R={config.ports} does not "
                              f"fit device '{device.name}': needs " + "; needs ".join(problems))
    # dataflow buffers go to URAM first, then to the block RAM left
    uram_used = min(device.uram_bits, left)
    bram_used = fixed + (left - uram_used)
    return Resources(dsp_pe, dsp_fft, tile_buffer_bits, fft_buffer_bits, left,
                     bram_used, uram_used, device.dsp_slices, device.bram_bits, device.uram_bits)
