"""``flexspec devices`` and ``flexspec simulate MODEL --device D [--weights FILE] [--functional] [--json out.json]``."""

from __future__ import annotations

import json
import sys

from ..datasets import fashion_mnist_subset
from ..devices import list_devices, load_device
from ..errors import UsageError
from ..fileio import write_file
from ..pipeline import check_file_out
from ..report.table import speedup_lines
from ..workload.zoo import get_network
from .arch import ARRAY_SPLITS, AcceleratorConfig
from .functional import functional_fmnist
from .kernels import resolve_kernels
from .search import Design, describe_design, one_more_array, resolve_design, search_design
from .sim import compare


def register(sub):
    p = sub.add_parser("devices", help="list the FPGA device profiles (built-in and FLEXSPEC_DEVICE_PATH)")
    p.set_defaults(func=_devices)
    s = sub.add_parser("simulate", help="simulate a network on the spectral accelerator model")
    s.add_argument("model", help="built-in network name (e.g. vgg16)")
    s.add_argument("--device", required=True, help="device short name or profile YAML path")
    s.add_argument("--fft-size", type=int, default=8)
    s.add_argument("--density", type=float, default=0.25)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--arrays", type=int, help="fix A (default: as many as fit); each option fixes only its own axis, "
                                               "the others are searched and the resolved design is printed")
    s.add_argument("--pes", type=int, help="fix P, PEs per array (default: searched)")
    s.add_argument("--banks", type=int, help="fix B, tile-buffer banks (default: searched)")
    s.add_argument("--ports", type=int, help="fix R, read ports per bank (default: searched)")
    s.add_argument("--broadcast", action="store_const", const=True, default=None,
                   help="fix broadcast on (default: searched)")
    s.add_argument("--fft-engines", type=int, help="fix the FFT and IFFT engine counts (default: searched)")
    s.add_argument("--array-split", choices=ARRAY_SPLITS, default=None,
                   help="how the PE arrays share a layer: 'tiles+groups' (default) or 'tiles' (each array runs the "
                        "whole program on its own tiles: the as-built replicated layer engine)")
    s.add_argument("--weights", help="SparseNetworkKernels .npz to run (default: the model's real or synthesized "
                                     "kernels; random masks only with --random-masks)")
    s.add_argument("--random-masks", action="store_true", help="use seeded random masks at --density")
    s.add_argument("--prune-scope", choices=("layer", "kernel"), default="layer",
                   help="magnitude-pruning scope of the synthesized VGG16 kernels (default layer)")
    s.add_argument("--functional", action="store_true",
                   help="also run the fixed-point functional check (models with real weights: fmnist_vgg)")
    s.add_argument("--images", type=int, default=1000, help="test images for --functional")
    s.add_argument("--json", dest="json_path", help="write the result (flexspec design and baseline) as JSON")
    s.add_argument("--accept-fallback", action="store_true",
                   help="cost layers without a model as one DRAM read + write instead of stopping")
    s.set_defaults(func=_simulate)


def _devices(args) -> int:
    problems = []
    devices = list_devices(problems)
    print(f"{'name':<11} {'vendor':<7} {'part':<30} {'DSP':>6} {'kLUT':>6} {'BRAM Mb':>8} {'URAM Mb':>8} "
          f"{'DRAM GB/s':>9} {'MHz':>5} {'DSP/cMAC':>8}")
    for d in devices:
        print(f"{d.name:<11} {d.vendor:<7} {d.part[:30]:<30} {d.dsp_slices:>6} {d.lut / 1e3:>6.0f} "
              f"{d.bram_bits / 2**20:>8.1f} {d.uram_bits / 2**20:>8.1f} {d.dram_bandwidth_bytes_per_s / 1e9:>9.1f} "
              f"{d.clock_hz / 1e6:>5.0f} {d.dsp_per_complex_mac:>8}")
    for exc in problems:
        print(f"error: skipped {exc}", file=sys.stderr)
    return 1 if problems else 0


def _table(r):
    print(f"{r.design} on {r.device}: A={r.config.arrays} P={r.config.pes} B={r.config.banks} "
          f"R={r.config.ports} broadcast={r.config.broadcast} FFT/IFFT engines={r.config.fft_engines}/"
          f"{r.config.ifft_engines}; DSP {r.resources.dsp_total}/{r.resources.device_dsp}; kernels: {r.kernels.kind} "
          f"({r.kernels.provenance[:80]})")
    hdr = (f"{'layer':<9} {'dataflow':<16} {'cycles':>9} {'time_us':>8} {'compute%':>8} {'mem%':>6} {'bank%':>6} "
           f"{'fft%':>5} {'fill%':>6} {'DSPeff':>6} {'traffic_MB':>10} {'est_err%':>8} {'/roof':>6} bound")
    print(hdr)
    for lay in r.layers:
        c = max(1, lay.cycles)
        print(f"{lay.name:<9} {lay.dataflow:<16} {lay.cycles:>9} {lay.seconds * 1e6:>8.1f} "
              f"{100 * lay.compute_cycles / c:>8.1f} {100 * lay.memory_stall_cycles / c:>6.1f} "
              f"{100 * lay.bank_conflict_cycles / c:>6.1f} {100 * lay.fft_stall_cycles / c:>5.1f} "
              f"{100 * lay.fill_cycles / c:>6.1f} {lay.dsp_efficiency:>6.2f} {lay.traffic_bytes / 1e6:>10.2f} "
              f"{100 * lay.estimate_error:>8.2f} {lay.achieved_over_roofline:>6.2f} {lay.bound}")
    print(f"{'total (end to end)':<26} {r.cycles:>9} {r.seconds * 1e6:>8.1f}  traffic {r.traffic_bytes / 1e6:.2f} MB, "
          f"DSP efficiency {r.dsp_efficiency:.2f}, achieved/roofline {r.cycles / max(1, r.roofline_cycles):.2f}")


def _simulate(args) -> int:
    if not 0 < args.density <= 1:
        raise UsageError(f"--density must be in (0, 1], got {args.density}")
    if args.weights and args.random_masks:
        raise UsageError("give --weights or --random-masks, not both")
    if args.json_path:
        check_file_out(args.json_path, "--json")
    net = get_network(args.model)
    device = load_device(args.device)
    choice = args.weights if args.weights else ("random" if args.random_masks else None)
    masks, net_k, src = resolve_kernels(net, choice, fft_size=args.fft_size, density=args.density, seed=args.seed,
                                        prune_scope=args.prune_scope)
    kernels = net_k if net_k is not None else masks
    if args.functional and (net_k is None or not net_k.is_real or net.name != "fmnist_vgg"):
        raise UsageError("--functional needs a model with real weights whose float forward pass FlexSpec knows "
                         "(fmnist_vgg, shipped or --weights)")
    overrides = {"arrays": args.arrays, "pes": args.pes, "banks": args.banks, "ports": args.ports,
                 "fft_engines": args.fft_engines, "broadcast": args.broadcast}
    for key, v in overrides.items():
        if key != "broadcast" and v is not None and v < 1:
            raise UsageError(f"--{key.replace('_', '-')} must be a positive integer, got {v}")
    if any(v is not None for v in overrides.values()):
        design = resolve_design(device, args.fft_size, network=net, masks=masks, array_split=args.array_split,
                                **overrides)
    else:
        best = search_design(net, device, args.fft_size, kernels, array_split=args.array_split)
        design = Design(best.config, best.resources, {k: "searched" for k in overrides}
                        | {"array_split": "requested" if args.array_split else "default"},
                        one_more_array(best.config, device))
    cfg = design.config
    print("\n".join(describe_design(design, device)))
    cmp = compare(net, device, cfg, kernels, whole_network=True, accept_fallback=args.accept_fallback)
    object.__setattr__(cmp.flexspec, "kernels", src)
    for b in cmp.baselines.values():
        object.__setattr__(b, "kernels", src)
    _table(cmp.flexspec)
    for b in cmp.baselines.values():
        print()
        _table(b)
    print()
    for line in speedup_lines(cmp.speedup_split()):
        print(line)
    for name in cmp.baselines:
        print(f"vs {name} baseline: traffic reduction {100 * cmp.traffic_reduction(name):.1f}%")
    data = cmp.to_dict()
    data["design"] = design.to_dict()
    if args.functional:
        x, y = fashion_mnist_subset()
        fr = functional_fmnist(net_k, x[:args.images], y[:args.images],
                               AcceleratorConfig(arrays=1, pes=cfg.pes, banks=cfg.banks, ports=cfg.ports,
                                                 broadcast=cfg.broadcast, fft_size=cfg.fft_size))
        print(f"\nfunctional ({fr.data_bits}-bit data, {fr.acc_bits}-bit accumulators, {fr.images} images): "
              f"agreement with float {100 * fr.agreement:.2f}%, accuracy fixed {100 * fr.accuracy_fixed:.2f}% / "
              f"float {100 * fr.accuracy_float:.2f}%")
        for c in fr.layers:
            print(f"  {c.name:<9} max |error| {c.max_abs_error:.3e} <= bound {c.bound:.3e}: {c.within_bound}")
        data["functional"] = fr.to_dict()
    if args.json_path:
        write_file(args.json_path, json.dumps(data, indent=1))
    return 0
