"""``flexspec prune``: prune a model's spectral kernels and write them as one .npz."""

from __future__ import annotations

from pathlib import Path

from .. import datasets
from ..errors import FlexSpecError, UsageError
from ..workload.zoo import NETWORKS, get_network

WEIGHTED_MODELS = ("fmnist_vgg", "vgg16")
SCOPES = ("layer", "kernel", "bank", "global")


def default_scope(method: str) -> str:
    """The scope ``flexspec prune`` uses without ``--scope``: hardware-aware pruning, the masks the
    accelerator runs best (it met issue 14's targets at 25% on fmnist_vgg: BENCHMARKS.md, "What the
    accelerator makes of the real masks") -- 'bank' for ADMM (equal non-zeros per kernel, and no bank
    of a group of 16 kernels read more often than a PE works), 'kernel' for magnitude pruning (equal
    non-zeros per kernel; 'bank' needs ADMM's training)."""
    return "bank" if method == "admm" else "kernel"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "prune", help="prune spectral kernels (magnitude or ADMM) and save them (.npz)",
        description="Prune a model's spectral (FFT) kernels to a density and write SparseNetworkKernels. "
                    "fmnist_vgg uses the shipped weights trained on Fashion-MNIST; vgg16 uses --state-dict "
                    "(torchvision layout) or kernels synthesized from --seed (the output says which).",
    )
    p.add_argument("model", metavar="MODEL", help=f"one of: {', '.join(WEIGHTED_MODELS)}")
    p.add_argument("--density", required=True, help="fraction of spectral entries kept, in (0, 1]")
    p.add_argument("--method", default="magnitude", choices=("magnitude", "admm"))
    p.add_argument("--fft-size", type=int, default=8, help="FFT size N (default 8)")
    p.add_argument("--scope", default=None, choices=SCOPES,
                   help="one threshold per layer, an equal count per kernel, an equal count per kernel with "
                        "every bank of a group of 16 kernels read at most that often (ADMM only), or one "
                        "threshold for all layers; default: hardware-aware, 'bank' with --method admm, else "
                        "'kernel' (the masks the accelerator runs best: BENCHMARKS.md, 'Pruning accuracy')")
    p.add_argument("--schedule", default=None,
                   help="per-layer densities, e.g. 'conv1_1=0.5,default=0.25' (overrides --density per layer)")
    p.add_argument("--state-dict", default=None, help="VGG16 state_dict file (torchvision layout)")
    p.add_argument("--seed", type=int, default=0, help="seed for synthesized VGG16 kernels and ADMM")
    p.add_argument("--admm-epochs", type=float, default=0.25,
                   help="ADMM budget in epochs of the 60k training images (fmnist_vgg; fractions allowed)")
    p.add_argument("--retrain-epochs", type=float, default=0.1, help="masked retraining after ADMM, in epochs")
    p.add_argument("--checkpoint", default=None,
                   help="ADMM checkpoint file (default: OUT.ckpt); written atomically as ADMM runs, so Ctrl-C "
                        "keeps the last one; rerunning the same command resumes from it")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (plain log lines instead)")
    p.add_argument("--heatmap", default=None, help="also write the frequency keep-probability map (PNG)")
    p.add_argument("--out", required=True, help="output .npz file")
    p.set_defaults(func=run)


def _check_out(path) -> Path:
    path = Path(path)
    if not path.parent.resolve().is_dir():
        raise UsageError(f"output folder {path.parent} does not exist")
    return path


def run(args) -> int:
    from .prune import check_density, parse_schedule

    density = check_density(args.density)
    schedule = parse_schedule(args.schedule) if args.schedule else None
    if schedule is not None and "default" not in schedule:
        schedule["default"] = density
    out = _check_out(args.out)
    heatmap = _check_out(args.heatmap) if args.heatmap else None
    if args.model not in NETWORKS:
        get_network(args.model)  # raises UnknownNameError listing the known models
    network = get_network(args.model)
    if not network.spectral_layers:
        raise UsageError(f"model '{args.model}' has no spectral-eligible convolution (stride 1, groups 1, "
                         f"kernel > 1x1): nothing to prune")
    if args.model not in WEIGHTED_MODELS:
        raise UsageError(f"FlexSpec has no weights for '{args.model}'; prune one of {', '.join(WEIGHTED_MODELS)} "
                         f"(fmnist_vgg: shipped trained weights; vgg16: --state-dict FILE or synthesized)")
    if args.state_dict and args.model != "vgg16":
        raise UsageError("--state-dict is for vgg16 (torchvision layout)")
    target = schedule if schedule is not None else density
    if args.scope is None:
        args.scope = default_scope(args.method)
        print(f"scope: {args.scope} (the default: hardware-aware; --scope layer for one threshold per layer)")

    if args.scope == "bank" and args.method != "admm":
        raise UsageError("--scope bank is for --method admm (fmnist_vgg)")
    if args.model == "vgg16":
        if args.method != "magnitude":
            raise UsageError("ADMM needs training data, which FlexSpec has only for fmnist_vgg; "
                             "use --method magnitude for vgg16")
        if schedule is not None:
            raise UsageError("--schedule is supported for fmnist_vgg only")
        from .synth import vgg16_kernels

        net = vgg16_kernels(args.fft_size, density, args.seed, args.state_dict, args.scope)
    elif args.method == "magnitude":
        net = _fmnist_magnitude(args.fft_size, target, args.scope)
    else:
        net, ckpt = _fmnist_admm(args, target)

    net.save(out)
    if args.method == "admm":
        ckpt.unlink(missing_ok=True)  # the run completed: nothing left to resume
    _summary(net, out)
    if heatmap:
        from .synth import plot_keep_probability

        tmp = heatmap.with_name(f".{heatmap.name}.tmp")
        tmp.write_bytes(plot_keep_probability(net))
        tmp.replace(heatmap)
        print(f"keep-probability map: {heatmap}")
    return 0


def _fmnist_magnitude(fft_size, target, scope):
    from . import real_model as rm
    from .prune import magnitude_prune
    from .sparse import SparseNetworkKernels

    weights = rm.load_dense_weights()
    spectra = rm.spectral_spectra(weights, fft_size)
    layers = magnitude_prune(spectra, {n: 3 for n in spectra}, target, scope)
    biases = {n: weights[f"{n}.bias"] for n in rm.CONV_NAMES}
    params = {f"{fc}.{p}": weights[f"{fc}.{p}"] for fc in rm.FC_NAMES for p in ("weight", "bias")}
    d = target if isinstance(target, float) else None
    return SparseNetworkKernels(rm.NAME, fft_size, layers, "trained on Fashion-MNIST (shipped); magnitude "
                                f"pruning ({scope}), no retraining", True, biases, params, "magnitude", d)


def _fmnist_admm(args, target):
    from . import real_model as rm

    if args.scope == "global":
        raise UsageError("ADMM prunes per layer or per kernel; use --scope layer or kernel")
    if args.admm_epochs < 0 or args.retrain_epochs < 0:
        raise UsageError(f"--admm-epochs and --retrain-epochs must be >= 0, got {args.admm_epochs} and "
                         f"{args.retrain_epochs}")
    try:
        import numpy as np
        import torch  # optional dependency
    except ImportError:
        raise UsageError("ADMM needs torch: pip install 'flexspec[torch]'") from None
    from .admm import AdmmConfig, admm_prune, check_checkpoint
    from .torch_ops import to_spectral

    torch.manual_seed(args.seed)
    model = rm.torch_model()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in rm.load_dense_weights().items()})
    spec = to_spectral(model, args.fft_size)
    cfg = AdmmConfig(density=target, scope=args.scope, admm_epochs=args.admm_epochs,
                     retrain_epochs=args.retrain_epochs, seed=args.seed)
    ckpt = Path(args.checkpoint) if args.checkpoint else Path(str(args.out) + ".ckpt")
    _check_out(ckpt)
    check_checkpoint(spec, cfg, ckpt)  # a foreign or broken checkpoint fails before the data are read
    x_u8, y = datasets.fashion_mnist("train")  # DatasetMissingError says how to install it
    try:
        with _Progress(not args.no_progress) as bar:
            _, _, history = admm_prune(spec, torch.from_numpy(datasets.to_float(x_u8)),
                                       torch.from_numpy(y.astype(np.int64)), cfg, log=bar.log, progress=bar.update,
                                       checkpoint=ckpt)
    except KeyboardInterrupt:
        where = f"the last completed checkpoint is {ckpt}" if ckpt.exists() else "no checkpoint was completed yet"
        raise InterruptedRun(f"interrupted: {where}; rerun the same command to resume (nothing else was "
                             f"written)") from None
    d = target if isinstance(target, float) else None
    net = rm.sparse_network_from_torch(
        spec, "admm" if args.scope == "layer" else "admm_hw", d,
        f"trained on Fashion-MNIST (shipped), ADMM-pruned (scope {args.scope}, {args.admm_epochs} epoch(s), seed "
        f"{args.seed}) + {args.retrain_epochs} epoch(s) masked retraining", True, args.fft_size,
        bank_maps=history.bank_maps, bank_map_banks=cfg.banks)
    return net, ckpt


class InterruptedRun(FlexSpecError):
    """Ctrl-C during a long run; the message says what was kept."""

    exit_code = 130


class _Progress:
    """A rich progress bar with loss and running accuracy (or plain lines when disabled)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bar = None
        self.tasks = {}

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:.3f}"),
                                TimeRemainingColumn(), transient=False)
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False

    def update(self, phase, step, steps, loss, acc):
        if self.bar is None:
            if step % 50 == 0 or step == steps:
                print(f"{phase} {step}/{steps}: loss {loss:.4f} accuracy {acc:.3f}", flush=True)
            return
        if phase not in self.tasks:
            self.tasks[phase] = self.bar.add_task(phase, total=steps, loss=loss, acc=acc)
        self.bar.update(self.tasks[phase], completed=step, loss=loss, acc=acc)

    def log(self, line: str):
        if self.bar is None:
            print(line, flush=True)
        else:
            self.bar.console.log(line)


def _summary(net, out) -> None:
    from .synth import low_frequency_share

    kind = "real trained weights" if net.is_real else "NOT real weights"
    print(f"{net.network}: {net.method} pruning, N={net.fft_size}, weights: {net.provenance} ({kind})")
    print(f"{'layer':<10} {'density':>8} {'nnz':>10} {'bytes':>12} {'low-freq share':>15}")
    for name, layer in net.layers.items():
        share, area = low_frequency_share(layer)
        print(f"{name:<10} {layer.density:8.4f} {layer.nnz:10d} {layer.total_bytes():12d} "
              f"{share:8.3f} / {area:.3f}")
    print(f"total: density {net.density:.4f}, {net.total_bytes()} bytes "
          f"(value 2x{next(iter(net.layers.values())).value_bits} bits + index "
          f"{next(iter(net.layers.values())).index_bits} bits per entry); wrote {out}")
