"""Derive a dataflow :class:`Budget` from a device profile (``flexspec.accel.devices.Device``).

* on-chip bytes = ``ONCHIP_FRACTION`` of BRAM + URAM: the rest is left to the FFT/iFFT
  pipelines, the banked tile buffers of the PE arrays, schedule tables and double buffering;
* bandwidth = peak DRAM bandwidth x the profile's burst efficiency (sustained);
* complex MACs per second = floor(DSP slices / DSPs per complex MAC) x clock x ``MAC_UTILIZATION``.
"""

from __future__ import annotations

from .model import Budget

ONCHIP_FRACTION = 0.5
MAC_UTILIZATION = 0.9


def budget_from_device(device, *, onchip_bytes: int | None = None, onchip_fraction: float = ONCHIP_FRACTION,
                       mac_utilization: float = MAC_UTILIZATION) -> Budget:
    """A Budget from any object with the Device fields (dsp_slices, bram_bits, uram_bits,
    dram_bandwidth_bytes_per_s, burst_efficiency, clock_hz, dsp_per_complex_mac)."""
    if onchip_bytes is None:
        onchip_bytes = int((device.bram_bits + device.uram_bits) * onchip_fraction) // 8
    return Budget(
        onchip_bytes=int(onchip_bytes),
        bandwidth_bytes_per_s=float(device.dram_bandwidth_bytes_per_s * device.burst_efficiency),
        macs_per_second=float(device.dsp_slices // device.dsp_per_complex_mac * device.clock_hz * mac_utilization),
    )
