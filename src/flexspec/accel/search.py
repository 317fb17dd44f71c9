"""Design-space search: A x P PE arrays, B banks x R ports, broadcast, FFT engines.

Every candidate that fits the device (DSPs, block RAM for the tile banks and FFT buffers, an
on-chip budget left for the dataflow) is simulated with its real schedules and the dataflow's
per-layer blocking; the fastest wins.  The buffer split between kernel, input-tile and
accumulator buffers is not a search axis: ``flexspec.dataflow`` chooses it per layer inside the
shared budget (a fixed split is a special case).  A design that does not fit raises
DoesNotFitError naming what it needs and what the device has.
"""

from __future__ import annotations

from ..errors import DoesNotFitError
from ..spectral.geometry import num_frequencies
from ..workload.layers import Network
from .arch import AcceleratorConfig, nontrivial_twiddles, resources
from .devices import load_device
from .kernels import resolve_kernels
from .sim import NetworkResult, ScheduleCache, simulate_network

PES = (32, 64)
ENGINES = (64,)
BANK_PORTS = ((20, 2), (40, 2))
BROADCAST = (False, True)


def candidates(device, fft_size: int = 8, pes=PES, engines=ENGINES, bank_ports=BANK_PORTS, broadcast=BROADCAST):
    """Configurations that fit ``device`` (A = as many arrays as the DSPs allow)."""
    device = load_device(device)
    f = num_frequencies(fft_size)
    fft_dsp = 2 * nontrivial_twiddles(fft_size) * device.dsp_per_complex_mac
    out = []
    for p in pes:
        for e in engines:
            a = (device.dsp_slices - 2 * e * fft_dsp) // (p * device.dsp_per_complex_mac)
            for b, r in bank_ports:
                for bc in broadcast:
                    if a < 1 or b > f:
                        continue
                    cfg = AcceleratorConfig(arrays=int(a), pes=p, banks=b, ports=r, fft_engines=e, ifft_engines=e,
                                            fft_size=fft_size, broadcast=bc)
                    try:
                        resources(cfg, device)
                    except DoesNotFitError:
                        continue
                    out.append(cfg)
    return out


def search_design(network: Network, device, fft_size: int = 8, kernels=None, *, density: float = 0.25, seed: int = 0,
                  pes=PES, engines=ENGINES, bank_ports=BANK_PORTS, broadcast=BROADCAST,
                  schedules: ScheduleCache | None = None) -> NetworkResult:
    """Fastest simulated design for ``network`` on ``device``.  ``schedules``: a ScheduleCache
    shared with later simulations of the same kernels (e.g. ``compare`` on the chosen design, or
    other devices)."""
    schedules = schedules if schedules is not None else ScheduleCache()
    device = load_device(device)
    masks, _, src = resolve_kernels(network, kernels, fft_size=fft_size, density=density, seed=seed)
    cands = candidates(device, fft_size, pes, engines, bank_ports, broadcast)
    if not cands:
        raise DoesNotFitError(f"no design in the search space fits device '{device.name}' ({device.dsp_slices} DSPs, "
                              f"{device.onchip_bits} on-chip bits); smallest tried needs P={min(pes)} PEs x "
                              f"{device.dsp_per_complex_mac} DSPs plus FFT engines")
    best = None
    for cfg in cands:
        r = simulate_network(network, device, cfg, masks, histograms=False, schedules=schedules)
        if best is None or r.cycles < best.cycles:
            best = r
    best = simulate_network(network, device, best.config, masks, schedules=schedules)
    object.__setattr__(best, "kernels", src)
    return best
