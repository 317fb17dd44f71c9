"""Design-space search: the (A, P, B, FFT engines, buffer split) that fits a device and
minimises simulated VGG16 (or any network) latency."""

from __future__ import annotations

from ..errors import DoesNotFitError
from ..workload.layers import Network
from .arch import AcceleratorConfig, nontrivial_twiddles, resources
from .devices import load_device
from .sim import DATAFLOWS, NetworkResult, Resources, group_cycles, random_masks, simulate_layer

PES = (16, 32, 64)
ENGINES = (16, 32, 64)


def search_design(network: Network, device, fft_size: int = 8, density: float = 0.25, seed: int = 0,
                  masks: dict | None = None, pes=PES, engines=ENGINES, splits=(0.5,)) -> NetworkResult:
    """Best-latency design; each candidate is simulated with its real schedules."""
    device = load_device(device)
    masks = masks if masks is not None else random_masks(network, fft_size, density, seed)
    layers = network.spectral_layers
    f = AcceleratorConfig(fft_size=fft_size).num_freq
    best = None
    fft_dsp = 2 * nontrivial_twiddles(fft_size) * device.dsp_per_complex_mac
    for p in pes:
        scheds = None
        for e in engines:
            budget = device.dsp_slices - 2 * e * fft_dsp
            a = budget // (p * device.dsp_per_complex_mac)
            if a < 1:
                continue
            for split in splits:
                cfg = AcceleratorConfig(arrays=int(a), pes=p, banks=f, ports=2, fft_engines=e, ifft_engines=e,
                                        fft_size=fft_size, kernel_buffer_fraction=split)
                try:
                    res: Resources = resources(cfg, device)
                except DoesNotFitError:
                    continue
                if scheds is None:
                    scheds = {lay.name: group_cycles(masks[lay.name], cfg) for lay in layers}
                out = tuple(min((simulate_layer(lay, masks[lay.name], cfg, device, res, df, "optimal",
                                                scheds[lay.name]) for df in DATAFLOWS),
                                key=lambda r: (r.cycles, r.traffic_bytes)) for lay in layers)
                r = NetworkResult(network.name, device.name, "flexspec", cfg, res, out, "optimal",
                                  ("design chosen by search_design",))
                if best is None or r.cycles < best.cycles:
                    best = r
    if best is None:
        raise DoesNotFitError(f"no design in the search space fits device '{device.name}' "
                              f"({device.dsp_slices} DSPs, {device.onchip_bits} on-chip bits)")
    return best
