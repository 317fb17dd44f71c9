"""VGG16 spectral kernels without ImageNet weights, and the frequency keep-probability map.

:func:`vgg16_kernels` uses a user's torchvision-layout VGG16 state_dict when one is given
(keys ``features.N.weight`` / ``features.N.bias``) and otherwise *synthesizes* kernels
deterministically from a seed by this documented method ("statistics transfer"):

1. From the shipped trained ``fmnist_vgg`` (real Fashion-MNIST weights), take each conv layer's
   3x3 kernels, normalise each kernel to unit norm, and estimate their 9x9 covariance
   ``Sigma_t`` (t = 1..6).  This captures how real trained kernels are spatially correlated,
   hence how their energy spreads over the N x (N//2+1) spectrum.
2. VGG16 conv layer l (l = 0..12) borrows trained layer t = round(l * 5 / 12) (relative depth).
3. Kernels are drawn i.i.d. from N(0, Sigma_t) with ``numpy.random.default_rng([seed, l])`` and
   scaled to He initialisation, std sqrt(2 / (9 * Cin)); biases are zero.
4. They are transformed to spectral kernels (N = fft_size) and magnitude-pruned per layer to the
   density (Hermitian-consistent, :mod:`flexspec.spectral.prune`).

The result's ``provenance`` says which of the two was used; ``is_real`` is True only for a
user state_dict.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..errors import InputFileError, UsageError
from ..workload.zoo import vgg16
from .geometry import half_width
from .prune import check_density, magnitude_mask
from .sparse import SparseNetworkKernels, SparseSpectralKernels
from .transform import spectral_kernels

#: torchvision ``vgg16().features`` indices of the 13 convolutions, with FlexSpec's zoo names.
VGG16_FEATURE_INDEX = {
    "conv1_1": 0, "conv1_2": 2, "conv2_1": 5, "conv2_2": 7, "conv3_1": 10, "conv3_2": 12, "conv3_3": 14,
    "conv4_1": 17, "conv4_2": 19, "conv4_3": 21, "conv5_1": 24, "conv5_2": 26, "conv5_3": 28,
}

SYNTH_METHOD = ("statistics transfer: 3x3 kernels drawn from N(0, Sigma) with Sigma the 9x9 covariance of the "
                "unit-norm kernels of the depth-matched layer of the shipped trained fmnist_vgg, He-scaled, "
                "then per-layer Hermitian-consistent magnitude pruning")


def _vgg16_shapes() -> dict:

    return {layer.name: layer for layer in vgg16().spectral_layers}


def trained_kernel_covariances() -> list:
    """9x9 covariance of the unit-norm 3x3 kernels of each conv layer of the shipped fmnist_vgg."""
    from . import real_model as rm

    weights = rm.load_dense_weights()
    covs = []
    for name in rm.CONV_NAMES:
        k = weights[f"{name}.weight"].reshape(-1, 9).astype(np.float64)
        k = k / np.maximum(np.linalg.norm(k, axis=1, keepdims=True), 1e-12)
        covs.append(np.cov(k, rowvar=False) + 1e-9 * np.eye(9))
    return covs


def synthesize_vgg16_weights(seed: int = 0, layers=None) -> dict:
    """Deterministic VGG16 spatial conv weights (see the module doc): name -> float32 [Cout, Cin, 3, 3].

    ``layers``: only these zoo layer names (each layer's draw does not depend on the others)."""
    covs = trained_kernel_covariances()
    out = {}
    for layer_idx, (name, layer) in enumerate(_vgg16_shapes().items()):
        if layers is not None and name not in layers:
            continue
        t = int(round(layer_idx * (len(covs) - 1) / 12))
        chol = np.linalg.cholesky(covs[t])
        rng = np.random.default_rng([int(seed), layer_idx])
        z = rng.standard_normal((layer.out_channels * layer.in_channels, 9))
        k = z @ chol.T
        k *= np.sqrt(2.0 / (9 * layer.in_channels)) / np.sqrt(np.trace(covs[t]))
        out[name] = k.reshape(layer.out_channels, layer.in_channels, 3, 3).astype(np.float32)
    return out


def load_vgg16_state_dict(path) -> tuple[dict, dict]:
    """Conv weights and biases (by zoo name) from a torchvision-layout VGG16 state_dict file."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise InputFileError(path, f"not a readable torch state_dict ({exc.__class__.__name__})") from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise InputFileError(path, "expected a dict of tensors (a state_dict)")
    shapes = _vgg16_shapes()
    weights, biases = {}, {}
    for name, idx in VGG16_FEATURE_INDEX.items():
        layer = shapes[name]
        key = f"features.{idx}.weight"
        if key not in sd:
            raise InputFileError(path, "missing (torchvision VGG16 layout expected)", key)
        w = sd[key].detach().cpu().float().numpy()
        expect = (layer.out_channels, layer.in_channels, 3, 3)
        if w.shape != expect:
            raise InputFileError(path, f"shape {w.shape}, VGG16 needs {expect}", key)
        weights[name] = w
        bkey = f"features.{idx}.bias"
        if bkey in sd:
            b = sd[bkey].detach().cpu().float().numpy()
            if b.shape != (layer.out_channels,):
                raise InputFileError(path, f"shape {b.shape}, expected ({layer.out_channels},)", bkey)
            biases[name] = b
    return weights, biases


def vgg16_kernels(fft_size: int = 8, density: float = 0.25, seed: int = 0, state_dict_path=None,
                  scope: str = "layer", layers=None) -> SparseNetworkKernels:
    """Pruned VGG16 spectral kernels: from ``state_dict_path`` if given, else synthesized from ``seed``.

    ``layers``: restrict to these zoo layer names (default: all 13 convolutions)."""
    d = check_density(density)
    if layers is not None:
        unknown = set(layers) - set(VGG16_FEATURE_INDEX)
        if unknown:
            from ..errors import UnknownNameError

            raise UnknownNameError("VGG16 conv layer", sorted(unknown)[0], VGG16_FEATURE_INDEX)
    if state_dict_path is not None:
        weights, biases = load_vgg16_state_dict(state_dict_path)
        provenance, is_real = f"user state_dict {state_dict_path}", True
    else:
        weights, biases = synthesize_vgg16_weights(seed, layers), {}
        provenance, is_real = f"synthesized from seed {seed} by {SYNTH_METHOD}", False
    out = {}
    for name, w in weights.items():
        if layers is not None and name not in layers:
            continue
        wf = spectral_kernels(w, fft_size)
        out[name] = SparseSpectralKernels.from_dense(wf, magnitude_mask(wf, d, scope), 3)
    biases = {k: v for k, v in biases.items() if k in out}
    return SparseNetworkKernels("vgg16", fft_size, out, provenance, is_real, biases, {}, "magnitude", d)


# --------------------------------------------------------------------------- keep probability
def keep_probability(ssk: SparseSpectralKernels) -> np.ndarray:
    """float [N, N//2+1]: fraction of the layer's kernels that keep each frequency position."""
    n = ssk.fft_size
    counts = np.bincount(ssk.indices.astype(np.int64), minlength=ssk.num_frequencies)
    return (counts / (ssk.out_channels * ssk.in_channels)).reshape(n, half_width(n))


def low_frequency_share(ssk: SparseSpectralKernels, radius_fraction: float = 0.25) -> tuple[float, float]:
    """(share of kept entries with radial frequency <= radius_fraction * N, share of positions there)."""
    n = ssk.fft_size
    rows = np.minimum(np.arange(n), n - np.arange(n))[:, None]
    cols = np.arange(half_width(n))[None, :]
    low = (np.hypot(rows, cols) <= radius_fraction * n).ravel()
    counts = np.bincount(ssk.indices.astype(np.int64), minlength=ssk.num_frequencies)
    return float(counts[low].sum() / max(ssk.nnz, 1)), float(low.mean())


def plot_keep_probability(net: SparseNetworkKernels, title: str | None = None) -> bytes:
    """PNG bytes: one heat map per layer of :func:`keep_probability` (rows: frequency row, fftshifted
    so DC is central; columns 0..N/2)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if not net.layers:
        raise UsageError("no layers to plot")
    names = list(net.layers)
    cols = min(len(names), 5)
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols + 1.0, 2.9 * rows + 0.7), squeeze=False,
                             layout="constrained")
    n = net.fft_size
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    im = None
    for ax, name in zip(axes.ravel(), names, strict=False):
        p = np.fft.fftshift(keep_probability(net.layers[name]), axes=0)
        im = ax.imshow(p, vmin=0, vmax=1, cmap="viridis", origin="lower",
                       extent=(-0.5, half_width(n) - 0.5, -n // 2 - 0.5, n - n // 2 - 0.5))
        ax.set_title(f"{name}\nd={net.layers[name].density:.3f}", fontsize=8)
        ax.set_xlabel("col (kx)", fontsize=7)
        ax.set_ylabel("row (ky)", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="keep probability")
    fig.suptitle(title or f"{net.network}: frequency keep probability (N={n}), "
                          f"{'real' if net.is_real else 'synthesized'} weights", fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
