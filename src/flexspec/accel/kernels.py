"""Which sparse kernels the accelerator runs, and where they come from (provenance).

* ``fmnist_vgg``: the shipped trained model (``flexspec.spectral.real_model``, ADMM-pruned
  (FMNIST_METHOD: the method that keeps its accuracy at 25% density -- 80% on the shipped
  subset, against 19% for plain magnitude pruning), the shipped density nearest the one asked,
  0.25 by default) -- real weights;
* ``vgg16``: ``flexspec.spectral.synth.vgg16_kernels`` -- synthesized deterministically from a
  seed (labelled as synthesized, ``is_real`` False) unless a user state_dict is given;
* any network: a user :class:`SparseNetworkKernels` file (``--weights FILE``);
* random masks only when asked (``kind='random'``), or for a built-in network that has neither
  real nor synthesized kernels (labelled so).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from ..errors import UsageError
from ..spectral.geometry import num_frequencies

KINDS = ("auto", "real", "synthesized", "random", "file")
#: Magnitude-pruning scopes of the synthesized VGG16 kernels (``flexspec.spectral.prune``):
#: 'layer' = one threshold per layer (uneven non-zeros per kernel), 'kernel' = every kernel keeps
#: round(density*F) entries (hardware-aware: equal PE loads by construction).
PRUNE_SCOPES = ("layer", "kernel")
#: Pruning method of the shipped fmnist_vgg model the accelerator runs by default.
FMNIST_METHOD = "admm"


@dataclass(frozen=True)
class KernelSource:
    """Provenance of the kernels a simulation used."""

    kind: str  # "trained" | "synthesized" | "random" | "user"
    provenance: str
    is_real: bool
    density: float
    fft_size: int
    seed: int | None = None
    path: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def random_masks(network, fft_size: int = 8, density: float = 0.25, seed: int = 0) -> dict:
    """Seeded sparse spectral masks, exactly round(density*F) non-zeros per kernel, bool [Cout, Cin, F]."""
    f = num_frequencies(fft_size)
    k = max(1, min(f, round(density * f)))
    rng = np.random.default_rng(seed)
    masks = {}
    for layer in network.spectral_layers:
        r = rng.random((layer.out_channels, layer.in_channels, f), dtype=np.float32)
        idx = np.argpartition(r, k - 1, axis=-1)[..., :k]
        m = np.zeros(r.shape, dtype=bool)
        np.put_along_axis(m, idx, True, axis=-1)
        masks[layer.name] = m
    return masks


def masks_of(kernels) -> dict:
    """name -> bool [Cout, Cin, F] of a SparseNetworkKernels."""
    return {name: ssk.mask() for name, ssk in kernels.layers.items()}


def resolve_kernels(network, kernels=None, *, fft_size: int = 8, density: float = 0.25, seed: int = 0,
                    prune_scope: str = "layer"):
    """(masks, SparseNetworkKernels or None, KernelSource) for ``network``.

    ``prune_scope``: PRUNE_SCOPES, how the synthesized VGG16 kernels are pruned (the shipped
    fmnist_vgg kernels and user files are already pruned: ignored for them).

    ``kernels``: None or 'auto' (real/synthesized when the network has them, else random, labelled),
    'random', a SparseNetworkKernels, or a path to a SparseNetworkKernels .npz."""
    from ..spectral.sparse import SparseNetworkKernels

    if isinstance(kernels, (str, bytes)) and kernels not in ("auto", "random") or hasattr(kernels, "__fspath__"):
        path = str(kernels)
        net_k = SparseNetworkKernels.load(path)
        src = KernelSource("user", f"file {path}: {net_k.provenance}", bool(net_k.is_real), float(net_k.density),
                           net_k.fft_size, None, path)
        return _check(network, masks_of(net_k), net_k.fft_size, path), net_k, src
    if isinstance(kernels, SparseNetworkKernels):
        kind = "trained" if kernels.is_real else "synthesized"
        src = KernelSource(kind, kernels.provenance, bool(kernels.is_real), float(kernels.density), kernels.fft_size)
        return _check(network, masks_of(kernels), kernels.fft_size), kernels, src
    if isinstance(kernels, dict):
        masks = _check(network, kernels, fft_size)
        dens = float(np.mean([m.mean() for m in masks.values()])) if masks else 0.0
        return masks, None, KernelSource("masks", "boolean masks given by the caller", False, dens, fft_size)
    if kernels not in (None, "auto", "random"):
        raise UsageError(f"kernels must be None, 'auto', 'random', a SparseNetworkKernels or a file path; "
                         f"got {kernels!r}")
    if kernels != "random":
        net_k = None
        if network.name == "fmnist_vgg":
            from ..spectral import real_model as rm

            d = min(rm.SHIPPED_DENSITIES, key=lambda x: abs(x - density))
            net_k = rm.load_pruned(FMNIST_METHOD, d)
        elif network.name == "vgg16":
            from ..spectral.synth import vgg16_kernels

            if prune_scope not in PRUNE_SCOPES:
                from ..errors import UnknownNameError

                raise UnknownNameError("pruning scope", str(prune_scope), PRUNE_SCOPES)
            net_k = vgg16_kernels(fft_size, density, seed, scope=prune_scope)
            net_k = replace(net_k, provenance=f"{net_k.provenance}, magnitude pruning scope '{prune_scope}'")
        if net_k is not None:
            if net_k.fft_size != fft_size:
                raise UsageError(f"the {network.name} kernels have N={net_k.fft_size}, asked N={fft_size}")
            return resolve_kernels(network, net_k, fft_size=fft_size)
    masks = random_masks(network, fft_size, density, seed)
    why = "" if kernels == "random" else f" (no real or synthesized kernels exist for '{network.name}')"
    src = KernelSource("random", f"seeded random masks, exactly round({density}*F) non-zeros per kernel, seed "
                       f"{seed}{why}", False, float(density), fft_size, seed)
    return masks, None, src


def _check(network, masks: dict, fft_size: int, path=None) -> dict:
    from ..errors import InputFileError

    for layer in network.spectral_layers:
        m = masks.get(layer.name)
        want = (layer.out_channels, layer.in_channels, num_frequencies(fft_size))
        msg = None
        if m is None:
            msg = f"no kernels for spectral layer '{layer.name}' of {network.name}"
        elif m.shape != want:
            msg = f"layer '{layer.name}' kernels have shape {m.shape}, the network needs {want}"
        if msg:
            if path:
                raise InputFileError(path, msg, layer.name)
            raise UsageError(msg)
    return masks
