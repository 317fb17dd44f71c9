"""Fine-tune the user's own model with the project's ADMM pruning (``flexspec.spectral.admm``)
on the user's data, and hand the result to ``flexspec.run`` (Python API; needs torch).

    network, kernels = flexspec.workload.finetune.admm_finetune(model, (3, 32, 32), loader, density=0.25)
    report = flexspec.run(network, weights=kernels)     # labelled as the user's own, ADMM fine-tuned

The model's eligible convolutions become ``SpectralConv2d`` layers
(``flexspec.spectral.torch_ops.to_spectral``, on a copy: the user's module is untouched), ADMM
prunes and retrains them on the batches of ``data`` (a ``torch.utils.data.DataLoader`` or any
iterable of ``(inputs, integer labels)`` batches; up to ``max_samples`` are used), and the
pruned spectra become the network's :class:`~flexspec.spectral.sparse.SparseNetworkKernels`.
The kernel values are those of the convolution itself: a batch-norm after it stays a separate
step in the fine-tuned torch model (the masks, which the accelerator's timing depends on, are
the same either way).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import UsageError
from ..spectral.prune import check_density
from ..spectral.sparse import SparseNetworkKernels, SparseSpectralKernels
from .torch_import import from_torch


def _collect(data, max_samples: int, input_shape=None):
    """(inputs float32 [n, *input_shape], labels int64 [n]) from up to ``max_samples`` samples of
    ``data``; a UsageError names the first batch of the wrong kind or shape."""
    import torch  # heavy optional dependency

    xs, ys, n = [], [], 0
    want = None if input_shape is None else tuple(int(v) for v in input_shape)
    for number, batch in enumerate(data):
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise UsageError("data must yield (inputs, labels) batches, e.g. a torch DataLoader of a TensorDataset")
        x, y = torch.as_tensor(batch[0]), torch.as_tensor(batch[1])
        if want is not None and tuple(x.shape[1:]) != want:
            raise UsageError(f"batch {number} of the data holds inputs of shape {tuple(x.shape)}; the model takes "
                             f"[batch, {', '.join(map(str, want))}]")
        if y.ndim != 1 or len(y) != len(x):
            raise UsageError(f"batch {number} of the data holds labels of shape {tuple(y.shape)} for {len(x)} inputs; "
                             "labels must be one integer class per input")
        if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
            raise UsageError(f"batch {number} of the data holds {y.dtype} labels; labels must be integer classes")
        x, y = x.to(torch.float32), y.to(torch.long)
        xs.append(x)
        ys.append(y)
        n += len(x)
        if n >= max_samples:
            break
    if not xs:
        raise UsageError("data yielded no batches")
    return torch.cat(xs)[:max_samples], torch.cat(ys)[:max_samples]


def admm_finetune(model, input_shape, data, *, density=0.25, fft_size: int = 8, scope: str = "layer",
                  config=None, max_samples: int = 10_000, name: str | None = None, log=None):
    """(Network, SparseNetworkKernels) of ``model`` after ADMM pruning on ``data`` (module docstring).

    ``density``: a float or a per-layer schedule (names as in the Network: module path with '_');
    ``scope``: "layer", "kernel" or "bank" (:mod:`flexspec.spectral.admm`);
    ``config``: an ``flexspec.spectral.admm.AdmmConfig`` (its density and scope are replaced by
    these arguments; with ``distill_weight > 0`` the user's dense ``model`` is the teacher)."""
    # torch (optional dependency, extra 'torch'): admm and torch_ops import it, so they load on use
    from ..spectral.admm import AdmmConfig, admm_prune, spectral_layers
    from ..spectral.torch_ops import mask_standard_layout, to_spectral

    if not isinstance(density, dict):
        check_density(density)  # before any work: a density outside (0, 1] is a usage error
    network = from_torch(model, input_shape, name)
    x, y = _collect(data, max_samples, input_shape)
    spec = to_spectral(model, fft_size)
    mods = spectral_layers(spec)
    by_net = {path.replace(".", "_"): mod for path, mod in mods.items()}
    if isinstance(density, dict):
        dens = {path: density.get(path.replace(".", "_"), density.get("default")) for path in mods}
        if any(v is None for v in dens.values()):
            raise UsageError("the density schedule names no density for some layer and has no 'default'")
    else:
        dens = density
    cfg = replace(config or AdmmConfig(), density=dens, scope=scope)
    # distillation (config.distill_weight > 0) learns from the user's dense model itself
    admm_prune(spec, x, y, cfg, log, teacher=model if cfg.distill_weight > 0 else None)
    missing = [lay.name for lay in network.spectral_layers if lay.name not in by_net]
    if missing:
        raise UsageError(f"to_spectral did not convert layer(s) {', '.join(missing)} of the network")
    layers, biases = {}, {}
    for lay in network.spectral_layers:
        mod = by_net[lay.name]
        wf = mod.spectrum().detach().cpu().numpy()
        mask = (mask_standard_layout(mod.mask, fft_size).cpu().numpy() if mod.mask is not None
                else np.ones(wf.shape, dtype=bool))  # the module keeps its mask frequency-major
        layers[lay.name] = SparseSpectralKernels.from_dense(wf, mask, mod.kernel_size)
        if mod.bias is not None:
            biases[lay.name] = mod.bias.detach().cpu().numpy().astype(np.float32)
    admm_steps, retrain_steps = cfg.steps(len(x))
    what = ("per-layer schedule" if isinstance(density, dict) else f"density {float(density):g}")
    provenance = (f"the user's own trained weights (a {type(model).__name__}), fine-tuned here with ADMM pruning "
                  f"(flexspec.spectral.admm: {admm_steps} ADMM + {retrain_steps} retraining steps on "
                  f"{len(x)} samples of the user's data), {scope} scope, {what}, N={fft_size}")
    net_k = SparseNetworkKernels(network.name, fft_size, layers, provenance, True, biases, {}, "admm",
                                 None if isinstance(density, dict) else float(density))
    return network, net_k
