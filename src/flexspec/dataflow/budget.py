"""The dataflow :class:`Budget` of a design, and the one compute-rate formula.

* compute: :func:`complex_macs_per_second` = PEs x clock (each PE does one complex MAC per
  cycle).  The dataflow budget, the simulator (``flexspec.accel.sim.budget_of``) and the roofline
  (``flexspec.dataflow.model``, through ``Budget.macs_per_second``) all use it;
* FFT: :func:`fft_tiles_per_second` = engines x clock / N (one N x N tile every N cycles);
* on-chip bytes = ``onchip_fraction`` of BRAM + URAM unless given;
* bandwidth = peak DRAM bandwidth x the profile's burst efficiency (sustained).
"""

from __future__ import annotations

from .model import Budget

ONCHIP_FRACTION = 0.5


def complex_macs_per_second(pe_count: int, clock_hz: float) -> float:
    """Peak complex multiply-accumulates per second of ``pe_count`` PEs at ``clock_hz``."""
    return float(pe_count) * float(clock_hz)


def fft_tiles_per_second(engines: int, clock_hz: float, fft_size: int) -> float:
    """2-D N x N (inverse) FFTs per second of ``engines`` pipelined engines."""
    return float(engines) * float(clock_hz) / float(fft_size)


def budget_from_device(device, *, pe_count: int, fft_engines: int | None = None, fft_size: int = 8,
                       onchip_bytes: int | None = None, onchip_fraction: float = ONCHIP_FRACTION) -> Budget:
    """A Budget for ``pe_count`` PEs (and ``fft_engines`` FFT engines, or FFT work left out) on
    any object with the Device fields (bram_bits, uram_bits, dram_bandwidth_bytes_per_s,
    burst_efficiency, clock_hz).  ``pe_count`` is the resolved design's A x P: the budget of a
    device without a design is not defined (the logic, not the DSPs, bounds the PEs)."""
    if onchip_bytes is None:
        onchip_bytes = int((device.bram_bits + device.uram_bits) * onchip_fraction) // 8
    return Budget(
        onchip_bytes=int(onchip_bytes),
        bandwidth_bytes_per_s=float(device.dram_bandwidth_bytes_per_s * device.burst_efficiency),
        macs_per_second=complex_macs_per_second(pe_count, device.clock_hz),
        ffts_per_second=None if fft_engines is None else fft_tiles_per_second(fft_engines, device.clock_hz, fft_size),
    )
