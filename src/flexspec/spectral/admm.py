"""ADMM pruning of spectral kernels (SPEC2, HiPC 2019), in torch, on ``SpectralConv2d`` weights.

Problem: minimise loss(W) over the spectral weights W subject to W = Z, Z in S (kernels with at
most the allowed non-zeros, Hermitian-consistent).  Augmented Lagrangian, scaled form:

* W-step: SGD steps (plain SGD by default: with Adam or momentum the pull of rho is normalised
  away or oscillates, and W does not converge to Z in a short budget) on
  loss(W) + rho/2 * sum_layers ||W - Z + U||^2;
* Z-step: Z = Pi_S(W + U) (magnitude projection, :func:`flexspec.spectral.prune.magnitude_mask`,
  of the Hermitian-projected W + U);
* U-step: U += W - Z;  rho *= rho_growth (rho increases).

Then hard-prune W to the support of Z (``SpectralConv2d.mask``) and retrain the kept values
(masked retraining).  Importing this module needs torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UsageError
from .prune import check_density, magnitude_mask, resolve_densities
from .sparse import hermitian_project
from .torch_ops import SpectralConv2d


@dataclass(frozen=True)
class AdmmConfig:
    """Hyper-parameters of :func:`admm_prune` (steps are minibatches)."""

    density: float | dict = 0.25  # a float or a per-layer schedule (see prune.resolve_densities)
    scope: str = "layer"  # "layer" or "kernel"
    admm_steps: int = 300
    z_every: int = 10  # W-steps between Z/U updates
    rho0: float = 1.0
    rho_growth: float = 1.3
    rho_max: float = 10.0
    optimizer: str = "sgd"  # W-step optimizer: "sgd" (rho then sets the pull towards Z - U) or "adam"
    lr: float = 0.05
    momentum: float = 0.0
    retrain_steps: int = 200
    retrain_lr: float = 5e-4
    batch_size: int = 64
    seed: int = 0


@dataclass
class AdmmHistory:
    steps: list = field(default_factory=list)  # (phase, step, loss, penalty, rho)
    primal_residual: list = field(default_factory=list)  # ||W - Z|| / ||W|| after each Z-step


def spectral_layers(model: torch.nn.Module) -> dict:
    """name -> SpectralConv2d of a (converted) model, in definition order."""
    return {name: mod for name, mod in model.named_modules() if isinstance(mod, SpectralConv2d)}


# --------------------------------------------------------------------------- faster forward
# --------------------------------------------------------------------------- ADMM
def _project(v: torch.Tensor, density: float, scope: str) -> tuple[torch.Tensor, np.ndarray]:
    """Z = Pi_S(v) for one layer: real [Cout, Cin, N, M, 2] -> (Z, mask)."""
    vc = hermitian_project(torch.view_as_complex(v.detach().cpu().contiguous()).numpy())
    mask = magnitude_mask(vc, density, scope)
    z = torch.view_as_real(torch.from_numpy(np.where(mask, vc, 0).astype(np.complex64)))
    return z.to(v.device, v.dtype), mask


def _batches(n: int, batch_size: int, gen: torch.Generator):
    while True:
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n - batch_size + 1, batch_size):
            yield perm[start:start + batch_size]


def masked_retrain(model, x, y, steps: int, lr: float, batch_size: int, seed: int,
                   history: AdmmHistory | None = None, log: Callable | None = None):
    """Train ``model`` (masks already set) for ``steps`` minibatches with Adam on cross-entropy."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    batches = _batches(len(x), batch_size, gen)
    model.train()
    for step in range(steps):
        idx = next(batches)
        opt.zero_grad()
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        if history is not None:
            history.steps.append(("retrain", step, loss.item(), 0.0, 0.0))
        if log and step % 50 == 0:
            log(f"retrain step {step}: loss {loss.item():.4f}")
    return model


def admm_prune(model, x, y, config: AdmmConfig = AdmmConfig(), log: Callable | None = None):
    """ADMM-prune the SpectralConv2d layers of ``model`` (modified in place) on data ``x`` float32
    [n, C, H, W], ``y`` int64 [n]; then hard-prune (set masks) and retrain the kept values.

    Returns (model, masks: name -> bool [Cout, Cin, N, N//2+1], AdmmHistory).
    """
    layers = spectral_layers(model)
    if not layers:
        raise UsageError("nothing to prune: the model has no SpectralConv2d layer "
                         "(convert it with flexspec.spectral.torch_ops.to_spectral first)")
    if isinstance(config.density, dict):
        dens = resolve_densities(layers, config.density)
    else:
        dens = {name: check_density(config.density) for name in layers}
    if config.admm_steps < 0 or config.retrain_steps < 0 or config.z_every < 1:
        raise UsageError("admm_steps and retrain_steps must be >= 0 and z_every >= 1")
    x = torch.as_tensor(x, dtype=torch.float32)
    y = torch.as_tensor(y, dtype=torch.long)
    if len(x) < config.batch_size:
        raise UsageError(f"need at least batch_size={config.batch_size} training samples, got {len(x)}")
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    history = AdmmHistory()
    for mod in layers.values():
        mod.mask = None
    z, u, masks = {}, {}, {}
    for name, mod in layers.items():
        z[name], masks[name] = _project(mod.weight, dens[name], config.scope)
        u[name] = torch.zeros_like(mod.weight)
    rho = config.rho0
    if config.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    elif config.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    else:
        raise UsageError(f"ADMM optimizer must be 'sgd' or 'adam', got {config.optimizer!r}")
    batches = _batches(len(x), config.batch_size, gen)
    model.train()
    for step in range(config.admm_steps):
        idx = next(batches)
        opt.zero_grad()
        loss = F.cross_entropy(model(x[idx]), y[idx])
        penalty = sum(((mod.weight - z[n] + u[n]) ** 2).sum() for n, mod in layers.items())
        (loss + 0.5 * rho * penalty).backward()
        opt.step()
        history.steps.append(("admm", step, loss.item(), penalty.item(), rho))
        if (step + 1) % config.z_every == 0:
            with torch.no_grad():
                num = den = 0.0
                for name, mod in layers.items():
                    z[name], masks[name] = _project(mod.weight + u[name], dens[name], config.scope)
                    u[name] += mod.weight - z[name]
                    num += float(((mod.weight - z[name]) ** 2).sum())
                    den += float((mod.weight ** 2).sum())
                history.primal_residual.append((num / max(den, 1e-30)) ** 0.5)
            rho = min(rho * config.rho_growth, config.rho_max)
            if log:
                log(f"admm step {step + 1}: loss {loss.item():.4f} rho {rho:.3g} "
                    f"residual {history.primal_residual[-1]:.3f}")
    # hard prune to the support of the last projection of W (U is discarded)
    with torch.no_grad():
        for name, mod in layers.items():
            zw, masks[name] = _project(mod.weight, dens[name], config.scope)
            mod.weight.copy_(zw)
            mod.set_mask(masks[name])
    masked_retrain(model, x, y, config.retrain_steps, config.retrain_lr, config.batch_size, config.seed + 1,
                   history, log)
    return model, masks, history


def magnitude_prune_model(model, density, scope: str = "layer") -> dict:
    """Set Hermitian-consistent magnitude masks on every SpectralConv2d of ``model`` (in place)."""
    layers = spectral_layers(model)
    if not layers:
        raise UsageError("nothing to prune: the model has no SpectralConv2d layer")
    dens = resolve_densities(layers, density)
    masks = {}
    with torch.no_grad():
        for name, mod in layers.items():
            mod.mask = None
            zw, masks[name] = _project(mod.weight, dens[name], scope)
            mod.weight.copy_(zw)
            mod.set_mask(masks[name])
    return masks
