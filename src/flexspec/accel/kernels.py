"""Which sparse kernels the accelerator runs, and where they come from (provenance).

* ``fmnist_vgg`` and ``fmnist_vgg16`` (VGG16's 13 convolutions at 1/8 width): the shipped trained models
  (``flexspec.spectral.real_model``), pruned by each model's ``default_method`` (fmnist_vgg: hardware-aware
  ADMM, bank-friendly, which meets the accuracy, PE-utilization and DSP-efficiency targets at 25%;
  fmnist_vgg16: per-layer ADMM, its hardware-aware model being 5.5 points below dense; BENCHMARKS.md
  "Pruning accuracy"), at one of the shipped densities: a density that is not shipped is refused, naming
  them -- real weights;
* ``vgg16``: ``flexspec.spectral.synth.vgg16_kernels`` -- synthesized deterministically from a
  seed (labelled as synthesized, ``is_real`` False) unless a user state_dict is given; the
  result is cached on disk keyed by its inputs (:func:`cached_vgg16_kernels`);
* a network imported with its weights (``flexspec.workload.from_torch`` / ONNX / .pt2): the
  user's own kernels, transformed and magnitude-pruned here (:func:`user_kernels`), labelled
  with the model file's sha256 and the pruning applied;
* any network: a user :class:`SparseNetworkKernels` file (``--weights FILE``);
* random masks only when asked (``kind='random'``), or for a built-in network that has neither
  real nor synthesized kernels (labelled so).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import InputFileError, UnknownNameError, UsageError
from ..spectral import prune as _prune, real_model as rm, synth as _synth
from ..spectral.geometry import num_frequencies
from ..spectral.sparse import SparseNetworkKernels
from ..spectral.transform import spectral_kernels

KINDS = ("auto", "real", "synthesized", "random", "file")
#: Magnitude-pruning scopes of the synthesized VGG16 kernels (``flexspec.spectral.prune``):
#: 'layer' = one threshold per layer (uneven non-zeros per kernel), 'kernel' = every kernel keeps
#: round(density*F) entries (hardware-aware: equal PE loads by construction).
PRUNE_SCOPES = ("layer", "kernel")


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
    sha256: str | None = None  # of the user's model / weights file
    pruning: str | None = None  # what was pruned here, e.g. "magnitude, layer scope, density 0.25"

    @property
    def label(self) -> str:
        """Short label for tables: 'USER (trained)', 'REAL', 'SYNTHESIZED', 'RANDOM', ..."""
        if self.kind == "user":
            return "USER (trained)" if self.is_real else "USER"
        return "REAL" if self.is_real else self.kind.upper()

    def to_dict(self) -> dict:
        return asdict(self)


# ------------------------------------------------------------------------- user's weights --
def _describe_density(density) -> str:
    if isinstance(density, Mapping):
        return "per-layer schedule " + ", ".join(f"{k}={float(v):g}" for k, v in density.items())
    return f"density {float(density):g}"


def user_kernels(network, fft_size: int, density, scope: str = "layer") -> tuple[SparseNetworkKernels, KernelSource]:
    """The user's own trained kernels of every spectral layer of ``network`` (imported with its
    weights), transformed (``flexspec.spectral.transform.spectral_kernels``) and magnitude-pruned
    (``flexspec.spectral.prune.magnitude_prune``, scope 'layer' or 'kernel', a density or a
    per-layer schedule mapping name -> density with an optional 'default')."""
    if scope not in PRUNE_SCOPES:
        raise UnknownNameError("pruning scope", str(scope), PRUNE_SCOPES)
    missing = [lay.name for lay in network.spectral_layers if lay.name not in network.weights]
    if missing:
        raise UsageError(f"network '{network.name}' has no weights for spectral layer(s) {', '.join(missing[:4])}")
    spectra = {lay.name: spectral_kernels(network.weights[lay.name].weight, fft_size)
               for lay in network.spectral_layers}
    sizes = {lay.name: lay.kernel_size for lay in network.spectral_layers}
    layers = _prune.magnitude_prune(spectra, sizes, density, scope)
    biases = {n: network.weights[n].bias for n in layers if network.weights[n].bias is not None}
    src = network.source or {}
    sha = src.get("sha256")
    where = (f"{src['path']} ({src.get('format')}, sha256 {sha})" if src.get("path") else
             f"a {src.get('format', 'Python model')}")
    pruning = f"magnitude pruning, {scope} scope, {_describe_density(density)}, N={fft_size}"
    provenance = f"the user's own trained weights from {where}, transformed and pruned here: {pruning}"
    target = None if isinstance(density, Mapping) else float(density)
    net_k = SparseNetworkKernels(network.name, fft_size, layers, provenance, True, biases, {}, "magnitude", target)
    return net_k, KernelSource("user", provenance, True, float(net_k.density), fft_size, None, src.get("path"), sha,
                               pruning)


# ------------------------------------------------------------------ synthesized VGG16 cache --
#: Environment variable: a folder for the kernel cache, or "off" to disable it.
CACHE_ENV = "FLEXSPEC_CACHE_DIR"


def cache_dir() -> Path | None:
    """The kernel cache folder (None: disabled): $FLEXSPEC_CACHE_DIR, else $XDG_CACHE_HOME/flexspec
    or ~/.cache/flexspec."""
    env = os.environ.get(CACHE_ENV)
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "no", "false") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "flexspec"


def _code_digest() -> str:
    """Digest of the code the synthesized kernels depend on: a code change is a new key."""
    h = hashlib.sha256(__version__.encode())
    for mod in (_synth, _prune):
        h.update(Path(mod.__file__).read_bytes())
    return h.hexdigest()[:16]


def cached_vgg16_kernels(fft_size: int, density: float, seed: int, scope: str) -> SparseNetworkKernels:
    """``flexspec.spectral.synth.vgg16_kernels`` (about 15 s), memoized on disk under
    :func:`cache_dir`, keyed by (N, density, seed, scope, the code's digest).  Written atomically;
    a missing, unreadable or foreign entry is recomputed.  Deterministic: the cached and the
    computed kernels are the same arrays."""
    folder = cache_dir()
    key = hashlib.sha256(repr((fft_size, float(density), int(seed), scope, _code_digest())).encode()).hexdigest()[:24]
    path = None if folder is None else folder / f"vgg16-kernels-{key}.npz"
    if path is not None and path.is_file():
        try:
            return SparseNetworkKernels.load(path)
        except (InputFileError, OSError):
            pass  # a damaged entry: recompute and replace it
    net_k = _synth.vgg16_kernels(fft_size, density, seed, scope=scope)
    if path is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            net_k.save(path)
        except OSError:
            pass  # an unwritable cache only costs time
    return net_k


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
        if network.name in rm.MODELS and not network.weights:  # fmnist_vgg, fmnist_vgg16: shipped trained
            method = rm.get_arch(network.name).default_method
            shipped = rm.get_arch(network.name).shipped_densities(method)
            if not any(abs(density - d) < 1e-9 for d in shipped):
                raise UsageError(f"{network.name} ships trained kernels pruned to densities "
                                 f"{', '.join(map(str, shipped))} only; asked {density:g}. Use one of "
                                 f"them, or prune yourself (e.g. 'flexspec prune') and pass --weights FILE")
            net_k = rm.load_pruned(method, density, network.name)
        elif network.name == "vgg16" and not network.weights:
            if prune_scope not in PRUNE_SCOPES:
                raise UnknownNameError("pruning scope", str(prune_scope), PRUNE_SCOPES)
            net_k = cached_vgg16_kernels(fft_size, density, seed, prune_scope)
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
