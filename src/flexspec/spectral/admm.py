"""ADMM pruning of spectral kernels (SPEC2, HiPC 2019), in torch, on ``SpectralConv2d`` weights.

Problem: minimise loss(W) over the spectral weights W subject to W = Z, Z in S (kernels with at
most the allowed non-zeros, Hermitian-consistent).  Augmented Lagrangian, scaled form:

* W-step: SGD steps (plain SGD by default: with Adam the pull of rho is normalised away, and W
  does not converge to Z in a short budget) on loss(W) + rho/2 * sum_layers ||W - Z + U||^2;
* Z-step: Z = Pi_S(W + U) (magnitude projection, :func:`flexspec.spectral.prune.magnitude_mask`,
  of the Hermitian-projected W + U);
* U-step: U += W - Z; rho grows geometrically from rho0 to rho_max over the ADMM phase.

Then hard-prune W to the support of Z (``SpectralConv2d.mask``) and retrain the kept values
(masked retraining with the mask fixed: Adam, or SGD with Nesterov momentum, and a cosine-decaying
learning rate).  Budgets are in epochs of the training data (fractions allowed).

Optional, for both phases: light augmentation (random shifts of up to ``augment_shift`` pixels,
random horizontal flips) and knowledge distillation from a ``teacher`` (the dense model):
loss = (1 - a) * CE + a * T^2 * KL(softmax(teacher / T) || softmax(student / T)).

The set S decides what the accelerator gets:

* ``scope="layer"``: one magnitude threshold per layer (kernels keep different counts);
* ``scope="kernel"`` (hardware-aware): every kernel keeps the same number of entries, so every
  PE of the accelerator gets the same work on every kernel group (the scheduler's bound is the
  busiest PE or the busiest bank; equal counts make the PE bound tight);
* ``scope="bank"`` (hardware-aware, bank-friendly): as "kernel", and in each group of ``pes``
  kernels no bank serves more reads than a PE has entries
  (:func:`flexspec.spectral.prune.bank_balanced_mask`), for the bank map that the scheduler's
  ``auto`` map gives the starting weights' per-kernel masks, fixed for the run
  (:func:`bank_maps`); the accelerator reaches the PE bound with that map.

Progress goes to an optional callback; with ``checkpoint`` set, the whole state (weights, Z, U,
rho, optimizer, step) is written atomically (:mod:`flexspec.fileio`) every
``checkpoint_every`` steps and at each phase end, and a later call with the same file resumes
from it.  Importing this module needs torch.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputFileError, UsageError
from ..fileio import write_file
from ..schedule.model import bank_map
from .prune import bank_balanced_mask, check_density, magnitude_mask, resolve_densities
from .sparse import hermitian_project
from .torch_ops import SpectralConv2d, frequency_major, standard_layout

ADMM_SCOPES = ("layer", "kernel", "bank")


@dataclass(frozen=True)
class AdmmConfig:
    """Hyper-parameters of :func:`admm_prune`; budgets in epochs of the training set."""

    density: float | dict = 0.25  # a float or a per-layer schedule (see prune.resolve_densities)
    scope: str = "layer"  # "layer" or "kernel" (hardware-aware: equal non-zeros per kernel)
    admm_epochs: float = 1.0
    z_every: int = 10  # W-steps between Z/U updates
    rho0: float = 0.1
    rho_max: float = 2.0  # rho grows geometrically from rho0 to rho_max over the ADMM steps
    optimizer: str = "sgd"  # W-step optimizer: "sgd" (rho then sets the pull towards Z - U) or "adam"
    lr: float = 0.02
    momentum: float = 0.0
    retrain_epochs: float = 0.5
    retrain_lr: float = 1e-3
    retrain_optimizer: str = "adam"  # masked retraining: "adam" or "sgd" (Nesterov momentum 0.9)
    batch_size: int = 128
    seed: int = 0
    augment_shift: int = 0  # random shift of each training image by up to this many pixels (0: none)
    augment_flip: bool = False  # random horizontal flips of the training images
    distill_weight: float = 0.0  # a in the module doc: weight of the teacher's soft targets (needs a teacher)
    distill_temperature: float = 4.0
    pes: int = 16  # scope "bank": kernels per group (PEs of one array), banks and ports of the tile buffer
    banks: int = 16
    ports: int = 1

    def steps(self, samples: int) -> tuple[int, int]:
        """(ADMM steps, retraining steps) for ``samples`` training samples."""
        per_epoch = max(1, samples // self.batch_size)
        return int(math.ceil(self.admm_epochs * per_epoch)), int(math.ceil(self.retrain_epochs * per_epoch))


@dataclass
class AdmmHistory:
    steps: list = field(default_factory=list)  # (phase, step, loss, penalty, rho)
    primal_residual: list = field(default_factory=list)  # ||W - Z|| / ||W|| after each Z-step
    bank_maps: dict = field(default_factory=dict)  # scope "bank": name -> the bank map balanced for


def spectral_layers(model: torch.nn.Module) -> dict:
    """name -> SpectralConv2d of a (converted) model, in definition order."""
    return {name: mod for name, mod in model.named_modules() if isinstance(mod, SpectralConv2d)}


def bank_maps(layers: dict, density: dict, banks: int) -> dict:
    """name -> the scheduler's ``auto`` bank map (int [F]) of the per-kernel masks of each layer's
    current weights at its density: the map scope "bank" balances the reads for."""
    out = {}
    for name, mod in layers.items():
        vc = hermitian_project(standard_layout(mod.weight.detach().cpu(), mod.fft_size).numpy())
        mask = magnitude_mask(vc, density[name], "kernel")
        out[name] = bank_map(mask.reshape(mask.shape[0], mask.shape[1], -1), banks, "auto")
    return out


def project_layer(weight: torch.Tensor, fft_size: int, density: float, scope: str,
                  bank: tuple | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """Z = Pi_S(weight) for one layer: weight in the layer's layout [2, F, Cin, Cout] ->
    (Z in the same layout, keep mask bool [Cout, Cin, N, N//2+1]); ``bank``: (bank_of, banks,
    pes, ports) for scope "bank"."""
    vc = hermitian_project(standard_layout(weight.detach().cpu(), fft_size).numpy())
    if scope == "bank":
        bank_of, banks, pes, ports = bank
        mask = bank_balanced_mask(vc, density, bank_of, banks, pes, ports)
    else:
        mask = magnitude_mask(vc, density, scope)
    z = frequency_major(torch.from_numpy(np.where(mask, vc, 0).astype(np.complex64)))
    return z.to(weight.device, weight.dtype), mask


def _batches(n: int, batch_size: int, seed: int, start: int = 0):
    """Minibatch indices from step ``start`` on: epoch e is a permutation drawn from seed (seed, e),
    so a resumed run sees the same batches as an uninterrupted one."""
    per_epoch = max(1, n // batch_size)
    epoch, offset = divmod(start, per_epoch)
    while True:
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
        for k in range(offset, per_epoch):
            yield perm[k * batch_size:(k + 1) * batch_size]
        epoch, offset = epoch + 1, 0


def augment_batch(x: torch.Tensor, shift: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """A randomly shifted (up to ``shift`` pixels each way, zero fill) and, with ``flip``, randomly
    horizontally flipped copy of the batch ``x`` [B, C, H, W] (draws from ``gen``)."""
    b, _, h, w = x.shape
    if shift > 0:
        xp = F.pad(x, (shift,) * 4)
        oy = torch.randint(0, 2 * shift + 1, (b,), generator=gen)
        ox = torch.randint(0, 2 * shift + 1, (b,), generator=gen)
        rows = (oy[:, None] + torch.arange(h)[None, :])[:, None, :, None]
        cols = (ox[:, None] + torch.arange(w)[None, :])[:, None, None, :]
        x = xp[torch.arange(b)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None], rows, cols]
    if flip:
        x = torch.where((torch.rand(b, generator=gen) < 0.5)[:, None, None, None], x.flip(-1), x)
    return x


def _objective(config: AdmmConfig, teacher):
    """loss(logits, inputs, labels) of the training phases: cross-entropy, or with ``teacher``
    blended with the distillation term of the module doc."""
    a, t = config.distill_weight, config.distill_temperature
    if a == 0:
        return lambda logits, xb, yb: F.cross_entropy(logits, yb)
    teacher.eval()

    def loss(logits, xb, yb):
        with torch.no_grad():
            soft = F.log_softmax(teacher(xb) / t, dim=1)
        kl = F.kl_div(F.log_softmax(logits / t, dim=1), soft, reduction="batchmean", log_target=True)
        return (1 - a) * F.cross_entropy(logits, yb) + a * t * t * kl
    return loss


def _signature(layers: dict) -> list:
    return [[name, list(mod.weight.shape)] for name, mod in layers.items()]


def check_data(model, x, y, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training data as tensors, or a UsageError saying what is wrong with them."""
    x = torch.as_tensor(x, dtype=torch.float32)
    y = torch.as_tensor(y)
    if x.ndim != 4:
        raise UsageError(f"training images must be [n, C, H, W], got shape {tuple(x.shape)}")
    if y.ndim != 1 or len(y) != len(x):
        raise UsageError(f"labels must be [n] with n = {len(x)} images, got shape {tuple(y.shape)}")
    if y.dtype.is_floating_point or y.dtype == torch.bool:
        raise UsageError(f"labels must be integers, got {y.dtype}")
    if len(x) < batch_size:
        raise UsageError(f"need at least batch_size={batch_size} training samples, got {len(x)}")
    try:
        with torch.no_grad():
            out = model(x[:1])
    except (RuntimeError, UsageError) as exc:  # torch layers raise RuntimeError, SpectralConv2d UsageError
        first = str(exc).splitlines()[0]
        raise UsageError(f"training images of shape {tuple(x.shape[1:])} do not fit the model: {first}") from None
    if out.ndim != 2:
        raise UsageError(f"the model must return logits [n, classes], got shape {tuple(out.shape)}")
    y = y.long()
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= out.shape[1]):
        raise UsageError(f"labels must lie in [0, {out.shape[1]}), got {int(y.min())}..{int(y.max())}")
    return x, y


class _Checkpoint:
    """The resumable ADMM state in one file, written atomically."""

    def __init__(self, path, layers: dict, config: AdmmConfig):
        self.path = None if path is None else Path(path)
        self.signature = _signature(layers)
        self.config = {k: (v if not isinstance(v, dict) else dict(v)) for k, v in asdict(config).items()}

    def load(self) -> dict | None:
        if self.path is None or not self.path.exists():
            return None
        try:
            state = torch.load(self.path, weights_only=False)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error
            raise InputFileError(self.path, f"not a readable ADMM checkpoint ({exc})") from None
        if not isinstance(state, dict) or state.get("kind") != "flexspec-admm-checkpoint":
            raise InputFileError(self.path, "not an ADMM checkpoint of flexspec")
        if state["signature"] != self.signature:
            raise InputFileError(self.path, "checkpoint is from another model (layers "
                                 f"{[s[0] for s in state['signature']]} with other shapes); "
                                 "give another --checkpoint file or remove this one", "signature")
        # a setting added after the checkpoint was written ran as its default
        defaults = {k: v for k, v in asdict(AdmmConfig()).items() if k not in state["config"]}
        if {**defaults, **state["config"]} != self.config:
            diff = sorted(k for k in self.config if {**defaults, **state["config"]}.get(k) != self.config[k])
            raise InputFileError(self.path, f"checkpoint was written with other settings ({', '.join(diff)}); "
                                 "resume with the same settings or give another --checkpoint file", "config")
        return state

    def save(self, state: dict) -> None:
        if self.path is None:
            return
        buf = io.BytesIO()
        torch.save({"kind": "flexspec-admm-checkpoint", "signature": self.signature, "config": self.config, **state},
                   buf)
        write_file(self.path, buf.getvalue())


def check_checkpoint(model, config: AdmmConfig, path) -> None:
    """Raise the error :func:`admm_prune` would raise for the checkpoint file ``path`` (another model,
    other settings, unreadable); nothing when it is absent or resumable."""
    _Checkpoint(path, spectral_layers(model), config).load()


def _train_steps(model, x, y, steps: int, start: int, opt, seed: int, batch_size: int, phase: str, history, progress,
                 extra_loss=None, after_step=None, save=None, checkpoint_every: int = 0, cosine: bool = False,
                 objective=None, augment: tuple = (0, False)):
    """Minibatch steps ``start .. steps-1`` of ``objective(logits, inputs, labels)`` (cross-entropy
    by default) + ``extra_loss()``; ``augment``: (shift, flip) of :func:`augment_batch`, drawn from
    a generator seeded by (seed, step) so a resumed run sees the same images; ``cosine``: the
    learning rate decays from its initial value to 0 along a half cosine (a function of the step,
    so a resumed run follows the same schedule)."""
    objective = objective or (lambda logits, xb, yb: F.cross_entropy(logits, yb))
    batches = _batches(len(x), batch_size, seed, start)
    base_lrs = [g.get("initial_lr", g["lr"]) for g in opt.param_groups]
    for g, lr in zip(opt.param_groups, base_lrs, strict=True):
        g["initial_lr"] = lr
    model.train()
    correct = seen = 0
    for step in range(start, steps):
        if cosine:
            for g, lr in zip(opt.param_groups, base_lrs, strict=True):
                g["lr"] = 0.5 * lr * (1 + math.cos(math.pi * step / max(1, steps)))
        idx = next(batches)
        xb = x[idx]
        if augment[0] or augment[1]:
            xb = augment_batch(xb, augment[0], augment[1], torch.Generator().manual_seed(seed * 7_919 + step))
        opt.zero_grad()
        logits = model(xb)
        loss = objective(logits, xb, y[idx])
        penalty = extra_loss() if extra_loss is not None else None
        (loss if penalty is None else loss + penalty).backward()
        opt.step()
        correct += int((logits.argmax(1) == y[idx]).sum())
        seen += len(idx)
        history.steps.append((phase, step, loss.item(), 0.0 if penalty is None else penalty.item(), 0.0))
        if after_step is not None:
            after_step(step)
        if progress is not None:
            progress(phase, step + 1, steps, loss.item(), correct / seen)
        if save is not None and checkpoint_every and (step + 1) % checkpoint_every == 0 and step + 1 < steps:
            save(phase, step + 1)


def _retrain_optimizer(model, name: str, lr: float):
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)
    return torch.optim.Adam(model.parameters(), lr=lr)


def _check_recipe(config: AdmmConfig, teacher) -> None:
    if config.retrain_optimizer not in ("sgd", "adam"):
        raise UsageError(f"retraining optimizer must be 'sgd' or 'adam', got {config.retrain_optimizer!r}")
    if config.augment_shift < 0:
        raise UsageError(f"augment_shift must be >= 0 pixels, got {config.augment_shift}")
    if not 0 <= config.distill_weight <= 1 or config.distill_temperature <= 0:
        raise UsageError(f"need 0 <= distill_weight <= 1 and distill_temperature > 0, got {config.distill_weight} "
                         f"and {config.distill_temperature}")
    if min(config.pes, config.banks, config.ports) < 1:
        raise UsageError(f"pes, banks and ports must be >= 1, got {config.pes}, {config.banks}, {config.ports}")
    if config.distill_weight > 0 and teacher is None:
        raise UsageError("distill_weight > 0 needs a teacher model (the dense network)")


def admm_prune(model, x, y, config: AdmmConfig = AdmmConfig(), log: Callable | None = None,
               progress: Callable | None = None, checkpoint=None, checkpoint_every: int = 50, teacher=None):
    """ADMM-prune the SpectralConv2d layers of ``model`` (modified in place) on data ``x`` float32
    [n, C, H, W], ``y`` int64 [n]; then hard-prune (set masks) and retrain the kept values.

    ``progress(phase, step, steps, loss, running_accuracy)`` is called after every step (phase
    "admm" or "retrain"); ``log`` gets a line after every Z-update.  ``checkpoint``: a file for the
    resumable state (see the module doc).  ``teacher``: the model whose soft targets the
    distillation term uses (needed when ``config.distill_weight > 0``).  Returns (model, masks: name -> bool [Cout, Cin, N, N//2+1],
    AdmmHistory).
    """
    layers = spectral_layers(model)
    if not layers:
        raise UsageError("nothing to prune: the model has no SpectralConv2d layer "
                         "(convert it with flexspec.spectral.torch_ops.to_spectral first)")
    if config.scope not in ADMM_SCOPES:
        raise UsageError(f"ADMM scope must be one of {', '.join(ADMM_SCOPES)}, got {config.scope!r}")
    if isinstance(config.density, dict):
        dens = resolve_densities(layers, config.density)
    else:
        dens = {name: check_density(config.density) for name in layers}
    if config.admm_epochs < 0 or config.retrain_epochs < 0 or config.z_every < 1 or config.batch_size < 1:
        raise UsageError("admm_epochs and retrain_epochs must be >= 0, z_every and batch_size >= 1")
    if not 0 < config.rho0 <= config.rho_max:
        raise UsageError(f"need 0 < rho0 <= rho_max, got {config.rho0} and {config.rho_max}")
    if config.optimizer not in ("sgd", "adam"):
        raise UsageError(f"ADMM optimizer must be 'sgd' or 'adam', got {config.optimizer!r}")
    _check_recipe(config, teacher)
    objective, augment = _objective(config, teacher), (config.augment_shift, config.augment_flip)
    for mod in layers.values():
        mod.set_mask(None)
    x, y = check_data(model, x, y, config.batch_size)
    admm_steps, retrain_steps = config.steps(len(x))
    z_every = config.z_every
    torch.manual_seed(config.seed)
    history = AdmmHistory()
    ckpt = _Checkpoint(checkpoint, layers, config)
    z, u, masks = {}, {}, {}
    maps = bank_maps(layers, dens, config.banks) if config.scope == "bank" else {}
    bank = {name: (maps[name], config.banks, config.pes, config.ports) if maps else None for name in layers}
    history.bank_maps = maps
    for name, mod in layers.items():
        z[name], masks[name] = project_layer(mod.weight, mod.fft_size, dens[name], config.scope, bank[name])
        u[name] = torch.zeros_like(mod.weight)
    state = {"rho": config.rho0}
    if config.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    retrain_opt = None
    phase, start = "admm", 0
    saved = ckpt.load()
    if saved is not None:
        for name, mod in layers.items():
            mod.set_mask(saved["masks"].get(name))
        model.load_state_dict(saved["model"])
        z, u, state["rho"] = saved["z"], saved["u"], saved["rho"]
        history.steps, history.primal_residual = saved["history_steps"], saved["primal_residual"]
        phase, start = saved["phase"], saved["step"]
        if phase == "admm":
            opt.load_state_dict(saved["opt"])
        masks = {name: mod.mask_standard().numpy() if mod.mask is not None else masks[name]
                 for name, mod in layers.items()}
        if log:
            log(f"resumed from {checkpoint}: {phase} step {start}")

    def save(ph, step, opt_state=None):
        ckpt.save({"model": model.state_dict(), "masks": {n: m.mask_standard() for n, m in layers.items()
                                                           if m.mask is not None}, "z": z, "u": u, "rho": state["rho"],
                   "phase": ph, "step": step, "opt": opt_state if opt_state is not None else
                   (opt.state_dict() if ph == "admm" else retrain_opt.state_dict()),
                   "history_steps": history.steps, "primal_residual": history.primal_residual})

    def penalty():
        return 0.5 * state["rho"] * sum(((mod.weight - z[n] + u[n]) ** 2).sum() for n, mod in layers.items())

    def z_update(step):
        if (step + 1) % z_every:
            return
        with torch.no_grad():
            num = den = 0.0
            for name, mod in layers.items():
                z[name], masks[name] = project_layer(mod.weight + u[name], mod.fft_size, dens[name], config.scope,
                                                     bank[name])
                u[name] += mod.weight - z[name]
                num += float(((mod.weight - z[name]) ** 2).sum())
                den += float((mod.weight ** 2).sum())
            history.primal_residual.append((num / max(den, 1e-30)) ** 0.5)
        state["rho"] = config.rho0 * (config.rho_max / config.rho0) ** min(1.0, (step + 1) / max(1, admm_steps))
        if log:
            log(f"admm step {step + 1}/{admm_steps}: rho {state['rho']:.3g} "
                f"residual {history.primal_residual[-1]:.3f}")

    if phase == "admm":
        _train_steps(model, x, y, admm_steps, start, opt, config.seed, config.batch_size, "admm", history, progress,
                     penalty, z_update, save, checkpoint_every, objective=objective, augment=augment)
        # hard prune to the support of the projection of W (U is discarded)
        with torch.no_grad():
            for name, mod in layers.items():
                zw, masks[name] = project_layer(mod.weight, mod.fft_size, dens[name], config.scope, bank[name])
                mod.weight.copy_(zw)
                mod.set_mask(masks[name])
        phase, start = "retrain", 0
    retrain_opt = _retrain_optimizer(model, config.retrain_optimizer, config.retrain_lr)
    if saved is not None and saved["phase"] == "retrain":
        retrain_opt.load_state_dict(saved["opt"])
    save("retrain", start)
    _train_steps(model, x, y, retrain_steps, start, retrain_opt, config.seed + 1, config.batch_size, "retrain", history,
                 progress, None, None, save, checkpoint_every, cosine=True, objective=objective, augment=augment)
    save("done", retrain_steps)
    return model, masks, history


def masked_retrain(model, x, y, epochs: float, lr: float, batch_size: int, seed: int, progress: Callable | None = None,
                   config: AdmmConfig | None = None, teacher=None):
    """Train ``model`` (masks already set) for ``epochs`` of ``x`` with a cosine-decaying learning
    rate from ``lr``; ``config``: the recipe (retraining optimizer, augmentation, distillation;
    Adam on plain cross-entropy when absent)."""
    config = config or AdmmConfig()
    _check_recipe(config, teacher)
    x, y = check_data(model, x, y, batch_size)
    steps = int(math.ceil(epochs * max(1, len(x) // batch_size)))
    opt = _retrain_optimizer(model, config.retrain_optimizer, lr)
    _train_steps(model, x, y, steps, 0, opt, seed, batch_size, "retrain", AdmmHistory(), progress, cosine=True,
                 objective=_objective(config, teacher), augment=(config.augment_shift, config.augment_flip))
    return model


def magnitude_prune_model(model, density, scope: str = "layer", *, banks: int = 16, pes: int = 16,
                          ports: int = 1) -> dict:
    """Set Hermitian-consistent magnitude masks on every SpectralConv2d of ``model`` (in place);
    ``banks``, ``pes``, ``ports``: the design scope "bank" balances for."""
    layers = spectral_layers(model)
    if not layers:
        raise UsageError("nothing to prune: the model has no SpectralConv2d layer")
    dens = resolve_densities(layers, density)
    for mod in layers.values():
        mod.set_mask(None)
    maps = bank_maps(layers, dens, banks) if scope == "bank" else {}
    masks = {}
    with torch.no_grad():
        for name, mod in layers.items():
            bank = (maps[name], banks, pes, ports) if maps else None
            zw, masks[name] = project_layer(mod.weight, mod.fft_size, dens[name], scope, bank)
            mod.weight.copy_(zw)
            mod.set_mask(masks[name])
    return masks
