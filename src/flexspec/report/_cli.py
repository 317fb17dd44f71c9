"""``flexspec run``, ``flexspec compare`` and ``flexspec sweep``: the main job and its variations."""

from __future__ import annotations

import os
import sys

from ..accel.arch import ARRAY_SPLITS
from ..devices import load_device
from ..errors import CapacityError, FlexSpecError, UsageError
from ..explore import explore, load_space
from ..explore._cli import add_cluster_options
from ..explore.journal import render_rows
from ..explore.output import print_result
from ..fileio import check_output_folder, write_file
from ..pipeline import check_density, check_file_out, check_fft_size, check_out, run
from . import print_report
from .render import sweep_csv

DEFAULT_OUT = "flexspec-out"


def register(sub) -> None:
    r = sub.add_parser(
        "run", help="the main job: compile MODEL for a device, simulate it, compare with the baselines, write a report",
        description="Walk the whole pipeline (network, sparse spectral kernels, per-layer dataflow, schedules, "
                    "simulation, baseline comparison), print a per-layer table and a summary, and write "
                    "report.json, layers.csv and report.html into --out. With no arguments: VGG16 on the u200 "
                    "with the embedded (synthesized, seeded) kernels.")
    r.add_argument("model", nargs="?", default="vgg16", metavar="MODEL",
                   help="built-in network (vgg16 (default), vgg16_cifar, resnet18, fmnist_vgg, fmnist_vgg16) or a "
                        "model file: .onnx (ONNX, opsets 9-22) or .pt2 (torch.export program); a file runs its own trained "
                        "weights, transformed and pruned here")
    _common(r)
    r.add_argument("--accept-fallback", action="store_true",
                   help="cost layers that have no model (listed with their reason) as one DRAM read of their "
                        "input and one write of their output, instead of stopping")
    r.add_argument("--fc-density", type=float, default=None, metavar="X",
                   help="prune the fully connected layers' streamed weights to this density (default: dense)")
    r.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help=f"output folder (default: ./{DEFAULT_OUT})")
    r.add_argument("--no-html", action="store_true", help="skip report.html (faster)")
    r.add_argument("--prune-scope", choices=("layer", "kernel"), default=None,
                   help="magnitude-pruning scope of synthesized kernels: 'layer' (one threshold per layer, uneven "
                        "non-zeros per kernel) or 'kernel' (every kernel keeps density*F entries: equal PE loads); "
                        "default: see README")
    r.set_defaults(func=_run)

    c = sub.add_parser("compare", help="run one model on several devices or configurations, print one table",
                       description="Run MODEL on every device of --devices and every design of --configs and "
                                   "print one table (and write it as CSV with --out).")
    c.add_argument("model", metavar="MODEL", help="built-in network name")
    c.add_argument("--devices", default="u200", help="comma-separated device names or profile YAML paths "
                                                     "(default: u200)")
    c.add_argument("--configs", default="", help="semicolon-separated designs, each 'pes=16,banks=8,arrays=4' "
                                                 "(default: the fitted design)")
    _common(c, design=False)
    c.add_argument("--out", default=None, metavar="FILE.csv", help="also write the table as CSV")
    c.set_defaults(func=_compare)

    s = sub.add_parser("sweep", help="a grid of (density, N, P, B) on one device: a front of 'flexspec explore'",
                       description="Simulate MODEL on one device at every point of the grid density x FFT size x "
                                   "PEs per array x banks, with 'flexspec explore' (Dask workers, cache, resume; no "
                                   "screening: every point is simulated), and write one CSV row per point. The "
                                   "exploration's folder (points.csv, front.html, ...) is FILE's name without "
                                   ".csv plus '.explore'; the same command resumes.")
    s.add_argument("model", metavar="MODEL", help="built-in network name")
    s.add_argument("--device", default="u200", help="device name or profile YAML path (default: u200)")
    s.add_argument("--density", default="0.25", help="comma-separated densities in (0, 1] (default 0.25)")
    s.add_argument("--fft-size", default="8", help="comma-separated FFT sizes (default 8)")
    s.add_argument("--pes", default="32", help="comma-separated PEs per array (default 32)")
    s.add_argument("--banks", default="16", help="comma-separated bank counts (default 16)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default="sweep.csv", metavar="FILE.csv", help="output CSV (default: sweep.csv)")
    s.add_argument("--quiet", action="store_true", help="no progress output")
    add_cluster_options(s)
    s.set_defaults(func=_sweep)


def _common(p, design: bool = True) -> None:
    if design:  # compare has --devices (and argparse maps --device onto it): never a second, ignored option
        p.add_argument("--device", default="u200", help="device name or profile YAML path (default: u200, the "
                                                        "reference board); see 'flexspec devices'")
    p.add_argument("--fft-size", type=int, default=None, metavar="N", help="FFT size N (default 8)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--density", default=None, metavar="X",
                   help="fraction of spectral kernel entries kept, in (0, 1] (default 0.25); for a model file also "
                        "a per-layer schedule 'conv1=0.5,default=0.25'")
    g.add_argument("--weights", default=None, metavar="FILE",
                   help="pruned sparse spectral kernels (.npz written by 'flexspec prune' / SparseNetworkKernels.save)")
    p.add_argument("--seed", type=int, default=0, help="seed of synthesized kernels / random masks (default 0)")
    if design:
        p.add_argument("--arrays", type=int, default=None, help="fix the number of PE arrays A (default: most that fit)")
        p.add_argument("--pes", type=int, default=None, help="PEs per array P (default 32)")
        p.add_argument("--banks", type=int, default=None,
                       help="tile-buffer banks B (default: the first fitting design of the search space, "
                            "B x R = 20 x 2 banks x ports at N=8; min(16, F) when --arrays is fixed)")
        p.add_argument("--array-split", choices=ARRAY_SPLITS, default=None,
                       help="how the PE arrays share a layer: 'tiles+groups' (default: each kernel-block run split "
                            "over tiles and kernel groups, the best split) or 'tiles' (every array runs the whole "
                            "program on its own tiles: the as-built replicated layer engine)")
    p.add_argument("--quiet", action="store_true", help="no progress output and no per-layer table")


def _density_arg(text):
    """--density as a number, or a per-layer schedule string (kept for pipeline.run to parse)."""
    if text is None or "=" in str(text):
        return text
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"--density must be a number in (0, 1] or a schedule 'layer=0.5,default=0.25', "
                         f"got {text!r}") from None


def _guard(fn):
    """Unexpected exceptions become one line (exit 1); FLEXSPEC_DEBUG=1 shows the traceback."""

    def wrapped(args):
        try:
            return fn(args)
        except (FlexSpecError, KeyboardInterrupt):
            raise
        except MemoryError:
            raise FlexSpecError("out of memory; try a smaller model or FFT size") from None
        except Exception as exc:  # noqa: BLE001
            if os.environ.get("FLEXSPEC_DEBUG"):
                raise
            raise FlexSpecError(f"internal error ({exc.__class__.__name__}: {exc}); this is a FlexSpec bug, "
                                f"please report it (FLEXSPEC_DEBUG=1 shows the traceback)") from None

    wrapped.__name__ = fn.__name__
    return wrapped


@_guard
def _run(args) -> int:
    report = run(args.model, args.device, fft_size=args.fft_size, density=_density_arg(args.density),
                 weights=args.weights, out=args.out, seed=args.seed, progress=not args.quiet, arrays=args.arrays,
                 pes=args.pes, banks=args.banks, html=not args.no_html, prune_scope=args.prune_scope,
                 accept_fallback=args.accept_fallback, fc_density=args.fc_density, array_split=args.array_split)
    print_report(report, table=not args.quiet)
    names = ["report.json", "layers.csv"] + ([] if args.no_html else ["report.html"])
    print(f"wrote {', '.join(os.path.join(args.out, n) for n in names)}")
    return 0


def _split(text: str, kind, what: str) -> list:
    out = []
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            continue
        try:
            out.append(kind(item))
        except ValueError:
            raise UsageError(f"--{what}: cannot read {item!r} as {'an integer' if kind is int else 'a number'}") \
                from None
    if not out:
        raise UsageError(f"--{what}: give at least one value")
    return out


def _parse_configs(text: str) -> list[dict]:
    configs = []
    for part in [p.strip() for p in text.split(";") if p.strip()] or [""]:
        cfg = {}
        for item in [i.strip() for i in part.split(",") if i.strip()]:
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or key not in ("arrays", "pes", "banks"):
                raise UsageError(f"--configs: cannot read {item!r}; give key=value with key arrays, pes or banks, "
                                 f"e.g. 'pes=16,banks=8;pes=32'")
            try:
                cfg[key] = int(value)
            except ValueError:
                raise UsageError(f"--configs: {key} must be an integer, got {value!r}") from None
        configs.append(cfg)
    return configs


def _point_row(report) -> dict:
    s = report.summary()
    acc = report.flexspec.config
    return {"arrays": acc.arrays, "pes": acc.pes, "banks": acc.banks, "fft_size": acc.fft_size,
            "status": "ok", "latency_seconds": s["latency_seconds"], "cycles": s["cycles"],
            "baseline_latency_seconds": s["baseline_latency_seconds"], "speedup_ratio": s["speedup_ratio"],
            "traffic_bytes": s["traffic_bytes"], "baseline_traffic_bytes": s["baseline_traffic_bytes"],
            "traffic_reduction_fraction": s["traffic_reduction_fraction"],
            "dsp_efficiency_fraction": s["dsp_efficiency_fraction"],
            "dsp_used_count": report.flexspec.resources.dsp_total,
            "memory_bound_layers_count": len(s["memory_bound_layers"]),
            "kernel_density_fraction": s["kernel_density_fraction"], "weights": s["weights"]}


def _progress_lines(quiet: bool, total: int):
    """A callable f(k, label) for a loop of `total` points: rich bar on a terminal, lines otherwise."""
    if quiet:
        return None, lambda k, label: None
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        prog = Progress(TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=Console(stderr=True))
        task = prog.add_task("points", total=total)

        def step(k, label):
            prog.update(task, completed=k, description=label)
        return prog, step

    def step(k, label):
        if k < total:
            print(f"flexspec: [{k + 1}/{total}] {label}", file=sys.stderr, flush=True)
    return None, step


@_guard
def _compare(args) -> int:
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    if not devices:
        raise UsageError("--devices: give at least one device name")
    for d in devices:  # unknown names and malformed profiles fail before any long computation
        load_device(d)
    configs = _parse_configs(args.configs)
    args.density = _density_arg(args.density)
    if args.density is not None:
        check_density(args.density)
    if args.fft_size is not None:
        check_fft_size(args.fft_size)
    if args.out:
        _check_csv_out(args.out)
    rows = []
    points = [(d, c) for d in devices for c in configs]
    prog, step = _progress_lines(args.quiet, len(points))
    if prog is not None:
        prog.start()
    try:
        for k, (dev, cfg) in enumerate(points):
            label = f"{args.model} on {dev} {','.join(f'{a}={b}' for a, b in cfg.items())}".strip()
            step(k, label)
            base = {"device": load_device(dev).name, "config": ",".join(f"{a}={b}" for a, b in cfg.items()) or
                    "fitted"}
            dev = load_device(dev)  # the profile itself: a name is never looked up twice
            try:
                rep = run(args.model, dev, fft_size=args.fft_size, density=args.density, weights=args.weights,
                          seed=args.seed, progress=False, tradeoff=False, html=False, **cfg)
                rows.append({**base, **_point_row(rep)})
            except CapacityError as exc:
                rows.append({**base, **{k2: cfg.get(k2) for k2 in ("arrays", "pes", "banks")},
                             "status": f"not run: {exc}"})
        step(len(points), "done")
    finally:
        if prog is not None:
            prog.stop()
    _print_rows(rows, f"{args.model}: designs compared")
    if args.out:
        write_file(args.out, sweep_csv(rows))
        print(f"wrote {args.out}")
    return 0 if any(r["status"] == "ok" for r in rows) else 1


def _check_csv_out(path) -> None:
    """A CSV destination: not a folder, in a folder that exists and can be written."""
    check_file_out(path, "--out")
    check_out(os.path.dirname(os.path.abspath(path)))


def _print_rows(rows: list[dict], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, title_justify="left", header_style="bold")
    cols = [("device", "device"), ("config", "config"), ("density", "density"), ("fft_size", "N"),
            ("arrays", "A"), ("pes", "P"), ("banks", "B"), ("latency_ms", "latency ms"),
            ("speedup", "speed-up"), ("traffic_mb", "traffic MB"), ("reduction", "traffic red."),
            ("dsp", "DSP eff"), ("mem", "mem-bound"), ("weights", "weights"), ("status", "status")]
    present = [(k, h) for k, h in cols if any(_cell(r, k) != "" for r in rows)]
    for _, h in present:
        t.add_column(h, no_wrap=h != "status")
    for r in rows:
        t.add_row(*[_cell(r, k) for k, _ in present])
    Console(highlight=False, width=None if sys.stdout.isatty() else 1000).print(t)


def _cell(r: dict, key: str) -> str:
    ok = r.get("status") == "ok"
    if key == "latency_ms":
        return f"{r['latency_seconds'] * 1e3:.3f}" if ok else ""
    if key == "speedup":
        return f"{r['speedup_ratio']:.2f}x" if ok else ""
    if key == "traffic_mb":
        return f"{r['traffic_bytes'] / 1e6:.2f}" if ok else ""
    if key == "reduction":
        return f"{100 * r['traffic_reduction_fraction']:.1f}%" if ok else ""
    if key == "dsp":
        return f"{r['dsp_efficiency_fraction']:.3f}" if ok else ""
    if key == "mem":
        return str(r["memory_bound_layers_count"]) if ok else ""
    if key == "density":
        v = r.get("density_requested_fraction")
        return "" if v is None else f"{v:g}"
    v = r.get(key)
    return "" if v is None else str(v)


@_guard
def _sweep(args) -> int:
    """The grid as a space of ``flexspec.explore`` (one device, no screening), then its rows as CSV."""
    if os.path.isdir(args.out):
        raise UsageError(f"--out '{args.out}' is a folder; give a CSV file name")
    check_output_folder(os.path.dirname(os.path.abspath(args.out)))
    space = load_space({"models": [args.model], "devices": [args.device],
                        "density": _split(args.density, float, "density"),
                        "fft_size": _split(args.fft_size, int, "fft-size"), "seed": args.seed,
                        "design": {"pes": _split(args.pes, int, "pes"), "banks": _split(args.banks, int, "banks")},
                        "objectives": ["latency", "lut", "dsp", "bram"]})
    stem = args.out[:-len(".csv")] if args.out.endswith(".csv") else args.out
    res = explore(space, stem + ".explore", scheduler=args.scheduler, workers=args.workers, screen=False,
                  cache_dir=args.cache, progress=not args.quiet)
    write_file(args.out, render_rows(res.rows))
    print_result(res)
    print(f"wrote {args.out} (the exploration: {res.folder})")
    return 0 if res.counts["ok"] and not res.counts["lost"] else 1
