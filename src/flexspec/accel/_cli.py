"""``flexspec devices`` and ``flexspec simulate MODEL --device D [--json out.json]``."""

from __future__ import annotations


def register(sub):
    p = sub.add_parser("devices", help="list the FPGA device profiles (built-in and FLEXSPEC_DEVICE_PATH)")
    p.set_defaults(func=_devices)
    s = sub.add_parser("simulate", help="simulate a network on the spectral accelerator model")
    s.add_argument("model", help="built-in network name (e.g. vgg16)")
    s.add_argument("--device", required=True, help="device short name or profile YAML path")
    s.add_argument("--fft-size", type=int, default=8)
    s.add_argument("--density", type=float, default=0.25)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--arrays", type=int, help="fix A (with --pes) instead of searching the design space")
    s.add_argument("--pes", type=int)
    s.add_argument("--banks", type=int)
    s.add_argument("--fft-engines", type=int, default=32)
    s.add_argument("--json", dest="json_path", help="write the result (flexspec design and baseline) as JSON")
    s.set_defaults(func=_simulate)


def _devices(args) -> int:
    from .devices import list_devices

    print(f"{'name':<11} {'vendor':<7} {'part':<30} {'DSP':>6} {'BRAM Mb':>8} {'URAM Mb':>8} "
          f"{'DRAM GB/s':>9} {'MHz':>5} {'DSP/cMAC':>8}")
    for d in list_devices():
        print(f"{d.name:<11} {d.vendor:<7} {d.part[:30]:<30} {d.dsp_slices:>6} {d.bram_bits / 2**20:>8.1f} "
              f"{d.uram_bits / 2**20:>8.1f} {d.dram_bandwidth_bytes_per_s / 1e9:>9.1f} {d.clock_hz / 1e6:>5.0f} "
              f"{d.dsp_per_complex_mac:>8}")
    return 0


def _table(r):
    print(f"{r.design} design on {r.device}: A={r.config.arrays} P={r.config.pes} B={r.config.banks} "
          f"R={r.config.ports} FFT/IFFT engines={r.config.fft_engines}/{r.config.ifft_engines}; "
          f"DSP {r.resources.dsp_total}/{r.resources.device_dsp}, BRAM bits {r.resources.bram_bits_used}, "
          f"URAM bits {r.resources.uram_bits_used}")
    hdr = (f"{'layer':<9} {'dataflow':<16} {'cycles':>9} {'time_us':>8} {'compute%':>8} {'mem%':>6} {'bank%':>6} "
           f"{'fft%':>5} {'fill%':>6} {'DSPeff':>6} {'traffic_MB':>10} {'est_err%':>8} {'/roof':>6} bound")
    print(hdr)
    for lay in r.layers:
        c = max(1, lay.cycles)
        print(f"{lay.name:<9} {lay.dataflow:<16} {lay.cycles:>9} {lay.seconds * 1e6:>8.1f} "
              f"{100 * lay.compute_cycles / c:>8.1f} {100 * lay.memory_stall_cycles / c:>6.1f} "
              f"{100 * lay.bank_conflict_cycles / c:>6.1f} {100 * lay.fft_stall_cycles / c:>5.1f} "
              f"{100 * lay.fill_cycles / c:>6.1f} {lay.dsp_efficiency:>6.2f} {lay.traffic_bytes / 1e6:>10.2f} "
              f"{100 * (lay.estimate_cycles / c - 1):>8.2f} {lay.achieved_over_bound:>6.2f} {lay.bound}")
    print(f"{'total':<26} {r.cycles:>9} {r.seconds * 1e6:>8.1f}  traffic {r.traffic_bytes / 1e6:.2f} MB, "
          f"DSP efficiency {r.dsp_efficiency:.2f}, achieved/roofline {r.cycles / max(1, r.roofline_cycles):.2f}")


def _simulate(args) -> int:
    import json
    import os
    import tempfile

    from ..errors import UsageError
    from ..workload.zoo import get_network
    from .arch import AcceleratorConfig
    from .devices import load_device
    from .search import search_design
    from .sim import random_masks, simulate_network

    if not 0 < args.density <= 1:
        raise UsageError(f"--density must be in (0, 1], got {args.density}")
    net = get_network(args.model)
    device = load_device(args.device)
    masks = random_masks(net, args.fft_size, args.density, args.seed)
    if args.arrays or args.pes:
        if not (args.arrays and args.pes):
            raise UsageError("give both --arrays and --pes, or neither (design search)")
        from .arch import num_frequencies
        cfg = AcceleratorConfig(arrays=args.arrays, pes=args.pes, banks=args.banks or num_frequencies(args.fft_size),
                                fft_engines=args.fft_engines, ifft_engines=args.fft_engines,
                                fft_size=args.fft_size)
        best = simulate_network(net, device, cfg, masks)
    else:
        best = search_design(net, device, args.fft_size, masks=masks)
    base = simulate_network(net, device, best.config, masks, design="baseline")
    _table(best)
    print()
    _table(base)
    print(f"\nspeed-up over baseline {base.cycles / best.cycles:.2f}x, traffic reduction "
          f"{100 * (1 - best.traffic_bytes / base.traffic_bytes):.1f}% (simulator figures, seeded random masks "
          f"at density {args.density})")
    if args.json_path:
        data = {"flexspec": best.to_dict(), "baseline": base.to_dict(),
                "masks": {"kind": "random", "density": args.density, "seed": args.seed, "fft_size": args.fft_size}}
        folder = os.path.dirname(os.path.abspath(args.json_path))
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
        os.replace(tmp, args.json_path)
    return 0
