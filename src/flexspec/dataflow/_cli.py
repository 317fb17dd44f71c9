"""``flexspec analyze``: per-layer dataflow, traffic split, bounds, and the fixed baselines."""

from __future__ import annotations

import json
import os
import re

from ..accel.design_dataflow import precision_of
from ..accel.search import fit_design
from ..devices import load_device
from ..errors import InputFileError, UsageError
from ..fileio import write_file
from ..pipeline import check_file_out
from ..spectral.sparse import SparseNetworkKernels
from ..workload import get_network
from .budget import budget_from_device
from .model import tradeoff_curve
from .network import analyze_network, synthetic_nnz_by_layer

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_bytes(text: str) -> int:
    """'22671360', '4MB', '512KiB', '2.5e6' -> bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise UsageError(f"--onchip-bytes: cannot read {text!r}; give bytes, e.g. 4000000, 4MB or 4MiB")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if value < 0:
        raise UsageError("--onchip-bytes must be >= 0")
    return int(value)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze", help="bandwidth-storage analysis and the flexible per-layer dataflow",
        description="Per-layer dataflow (kernel reuse, activation reuse or blocked), block sizes and off-chip "
                    "traffic of a network's spectral layers, against the fixed dataflows and the compulsory bound.")
    p.add_argument("model", metavar="MODEL", help="built-in network name (e.g. vgg16)")
    p.add_argument("--device", default="u200", help="device profile name or YAML file (default: u200)")
    p.add_argument("--onchip-bytes", default=None,
                   help="on-chip capacity for the dataflow buffers (default: a fraction of the device's BRAM+URAM)")
    p.add_argument("--fft-size", type=int, default=8, help="FFT size N (default 8)")
    p.add_argument("--density", type=float, default=0.25,
                   help="kernel density of the synthetic random masks (default 0.25)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic masks (default 0)")
    p.add_argument("--weights", metavar="FILE", default=None,
                   help="real non-zero counts from a SparseNetworkKernels .npz (flexspec prune --out) "
                        "instead of synthetic masks; sets N from the file")
    p.add_argument("--no-residency", action="store_true", help="never keep a layer's output on chip")
    p.add_argument("--json", metavar="OUT", default=None, help="write the figures as JSON to OUT")
    p.add_argument("--plots", metavar="DIR", default=None,
                   help="write tradeoff.png and traffic_bars.png into DIR")
    p.set_defaults(func=run)


def _mb(bits) -> str:
    return f"{bits / 8e6:9.3f}"


def format_table(result) -> str:
    lines = []
    head = (f"{'layer':<10} {'dataflow':<16} {'order':<5} {'Bo':>4} {'Bi':>4} {'Bt':>5} {'in':<9} {'out':<9} "
            f"{'kernels':>9} {'inputs':>9} {'outputs':>9} {'psums':>9} {'total':>9} {'bound':>9} {'ratio':>6} "
            f"{'onchip':>8} {'bound by':<8}")
    lines.append("flexible plan; traffic, bound and on-chip storage in MB (10^6 bytes); kernels counted as packed "
                 "entries (no PE-array schedule here: `flexspec run` / `simulate` count the stored schedule stream)")
    lines.append(head)
    for x in result.layers:
        b = x.blocking
        blk = f"{b.order:<5} {b.cout_block:>4} {b.cin_block:>4} {b.tile_block:>5}" if b else f"{'-':<5} {'':>4} {'':>4} {'':>5}"
        lines.append(
            f"{x.layer_name:<10} {x.dataflow:<16} {blk} {x.input_link:<9} {x.output_link:<9} "
            f"{_mb(x.kernels_bits)} {_mb(x.inputs_bits)} {_mb(x.outputs_bits)} {_mb(x.psums_bits)} "
            f"{_mb(x.total_bits)} {_mb(x.bound.total_bits)} {x.bound_ratio:6.3f} {x.onchip_bits / 8e6:8.3f} "
            f"{'memory' if x.memory_bound else 'compute':<8}")
    lines.append("")
    lines.append(f"{'plan':<18} {'kernels':>9} {'inputs':>9} {'outputs':>9} {'psums':>9} {'total':>9} "
                 f"{'vs bound':>8} {'time ms':>8} {'mem-bound layers':>16}")
    bound = result.bound.total_bytes
    for plan in result.plans:
        t = result.totals(plan)
        lines.append(f"{plan:<18} {t['kernels_bytes'] / 1e6:9.3f} {t['inputs_bytes'] / 1e6:9.3f} "
                     f"{t['outputs_bytes'] / 1e6:9.3f} {t['psums_bytes'] / 1e6:9.3f} {t['total_bytes'] / 1e6:9.3f} "
                     f"{t['total_bytes'] / bound:8.3f} {t['time_seconds'] * 1e3:8.3f} "
                     f"{len(t['memory_bound_layers']):>16}")
    lines.append(f"{'compulsory bound':<18} {result.bound.kernels_bits / 8e6:9.3f} {result.bound.inputs_bits / 8e6:9.3f} "
                 f"{result.bound.outputs_bits / 8e6:9.3f} {0:9.3f} {bound / 1e6:9.3f} {1:8.3f}")
    for base in ("kernel-reuse", "activation-reuse"):
        if base in result.plans:
            lines.append(f"flexible vs {base}: {100 * result.reduction(base):.1f}% less traffic")
    for plan, why in result.infeasible.items():
        lines.append(f"{plan}: does not fit ({why})")
    mb = result.memory_bound_layers
    lines.append(f"memory-bound layers (flexible): {', '.join(mb) if mb else 'none'}")
    return "\n".join(lines)


def nnz_from_weights(network, path):
    """(nnz by layer, N, description) from a SparseNetworkKernels file; every spectral layer of
    ``network`` must be in it with the layer's shape."""
    kernels = SparseNetworkKernels.load(path)
    nnz = {}
    for layer in network.spectral_layers:
        if layer.name not in kernels.layers:
            raise InputFileError(path, f"has no kernels for layer '{layer.name}' of {network.name}", "layers")
        k = kernels.layers[layer.name]
        if (k.out_channels, k.in_channels) != (layer.out_channels, layer.in_channels):
            raise InputFileError(path, f"layer '{layer.name}' has {k.out_channels}x{k.in_channels} kernels, "
                                       f"{network.name} needs {layer.out_channels}x{layer.in_channels}", layer.name)
        nnz[layer.name] = k.nnz_per_kernel()
    kind = "real" if kernels.is_real else "synthesized"
    return nnz, kernels.fft_size, f"{kind} kernels from {path} (density {kernels.density:.3f}: {kernels.provenance})"


def run(args) -> int:
    network = get_network(args.model)
    device = load_device(args.device)
    onchip = parse_bytes(args.onchip_bytes) if args.onchip_bytes is not None else None
    if not 0.0 < args.density <= 1.0:
        raise UsageError(f"--density must be in (0, 1] (fraction of spectral kernel entries kept), got {args.density}")
    # every destination is checked before anything is computed or written (all or nothing)
    if args.json:
        check_file_out(args.json, "--json")
    if args.plots and not os.path.isdir(args.plots):
        raise UsageError(f"--plots: folder {args.plots} does not exist")
    # the design `flexspec run` would build (A x P PEs, FFT engines, buffer share): one compute rate
    config, res = fit_design(device, args.fft_size)
    budget = budget_from_device(device, pe_count=config.pe_count, fft_engines=config.fft_engines,
                                fft_size=args.fft_size,
                                onchip_bytes=onchip if onchip is not None else res.dataflow_bits // 8)
    precision = precision_of(config)  # the design's word widths, as `flexspec run` counts them
    if args.weights:
        nnz, args.fft_size, source = nnz_from_weights(network, args.weights)
    else:
        nnz = synthetic_nnz_by_layer(network, args.fft_size, args.density, args.seed)
        source = f"density {args.density} (synthetic masks, seed {args.seed})"
    result = analyze_network(network, nnz, args.fft_size, budget, precision, residency=not args.no_residency)
    print(f"{network.name} on {device.name}: N = {args.fft_size}, {source}, on-chip {budget.onchip_bytes:,} B, "
          f"bandwidth {budget.bandwidth_bytes_per_s / 1e9:.1f} GB/s, {budget.macs_per_second / 1e9:.0f} G complex MAC/s")
    print(format_table(result))
    if args.json:
        doc = result.to_dict()
        doc.update(model=args.model, device=device.name, density=None if args.weights else args.density,
                   seed=None if args.weights else args.seed, nnz_source=source,
                   kernel_storage="entries")  # packed non-zeros: a pure dataflow analysis has no PE-array schedule
        write_file(args.json, json.dumps(doc, indent=1) + "\n")
        print(f"wrote {args.json}")
    if args.plots:
        from .plots import plot_tradeoff, plot_traffic_bars  # matplotlib: imported only when plotting

        curves = [tradeoff_curve(layer, nnz[layer.name], args.fft_size, precision)
                  for layer in network.spectral_layers]
        plot_tradeoff(curves, os.path.join(args.plots, "tradeoff.png"), title=f"{network.name}: tradeoff per layer")
        plot_traffic_bars(result, os.path.join(args.plots, "traffic_bars.png"))
        print(f"wrote {args.plots}/tradeoff.png and traffic_bars.png")
    return 0
