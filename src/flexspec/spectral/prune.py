"""Magnitude pruning of spectral kernels, Hermitian-consistent.

Pruning acts on *units*: a conjugate pair in columns 0 / N/2 of the half-plane is one unit of
two stored entries (kept or pruned together), every other position a unit of one.  Units are
ranked by magnitude and kept greedily, largest first, while the kept entry count stays within
the target ``round(density * positions)`` (so the achieved density is at most the target and
short of it by at most one entry).  Ties break by position (deterministic).

Scopes: ``"layer"`` (one threshold per layer: the density schedule applies), ``"kernel"``
(every kernel keeps the same count: balanced for hardware), ``"global"`` (one threshold over
all layers: a single density).

:func:`bank_balanced_mask` adds the accelerator's second bound: every kernel keeps the same
count *and*, in each kernel group of P kernels (one input channel, P consecutive output
channels: the scheduler's grouping of equal-count kernels), every bank serves at most
``ports x count`` reads, so a conflict-free schedule can reach the PE bound.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import UnknownNameError, UsageError
from .geometry import half_width, num_frequencies
from .sparse import SparseSpectralKernels, conjugate_partner, hermitian_project

SCOPES = ("layer", "kernel", "global")


def check_density(density, what: str = "density") -> float:
    """``density`` as a float in (0, 1]; UsageError otherwise."""
    try:
        d = float(density)
    except (TypeError, ValueError):
        raise UsageError(f"{what} must be a number in (0, 1], got {density!r}") from None
    if not (0.0 < d <= 1.0):
        raise UsageError(f"{what} must lie in (0, 1] (fraction of spectral entries kept), got {density!r}")
    return d


def resolve_densities(names, density) -> dict:
    """Per-layer densities from a float (all layers) or a schedule: a mapping layer name -> density,
    with an optional key ``"default"`` for the layers not named."""
    names = list(names)
    if not isinstance(density, Mapping):
        d = check_density(density)
        return {n: d for n in names}
    unknown = set(density) - set(names) - {"default"}
    if unknown:
        raise UnknownNameError("layer in the density schedule", sorted(unknown)[0], names + ["default"])
    out = {}
    for n in names:
        if n in density:
            out[n] = check_density(density[n], f"density of layer '{n}'")
        elif "default" in density:
            out[n] = check_density(density["default"], "default density")
        else:
            raise UsageError(f"density schedule names no density for layer '{n}' and has no 'default'")
    return out


def parse_schedule(text: str) -> dict:
    """'conv1_1=0.5,conv1_2=0.3,default=0.25' -> mapping (for the CLI)."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise UsageError(f"density schedule entry {part!r} is not NAME=DENSITY")
        name, value = (s.strip() for s in part.split("=", 1))
        out[name] = check_density(value, f"density of '{name}'")
    return out


def _units(fft_size: int):
    """Representative position of each unit and its size (1 or 2 stored entries)."""
    partner = conjugate_partner(fft_size)
    reps = np.nonzero(partner >= np.arange(partner.size))[0]
    sizes = np.where(partner[reps] == reps, 1, 2)
    return reps, partner[reps], sizes


def _unit_scores(wf: np.ndarray) -> np.ndarray:
    """[K, U] magnitude score of each unit of each kernel (Hermitian-projected spectra)."""
    n = wf.shape[-2]
    reps, partners, _ = _units(n)
    mag = np.abs(hermitian_project(wf)).reshape(-1, num_frequencies(n))
    return np.maximum(mag[:, reps], mag[:, partners])


def _select(scores: np.ndarray, sizes: np.ndarray, target: int) -> np.ndarray:
    """Keep units (flat arrays) largest-first, ties by position, while the cumulative size stays
    <= target.

    Equal to a stable sort of all units, but only the units whose rank can decide the cut are
    sorted: sizes are 1 or 2, so the first ``target // 2`` ranks are always kept and nothing
    past rank ``target`` ever is (found with O(n) partitions)."""
    n = scores.size
    keep = np.zeros(n, dtype=bool)
    if target <= 0 or n == 0:
        return keep
    k_lo, k_hi = min(n, target // 2), min(n, target)
    neg = -scores
    if k_lo > 0:
        v_lo = np.partition(neg, k_lo - 1)[k_lo - 1]  # -(k_lo-th largest score)
        sure = neg < v_lo  # strictly above the k_lo-th largest: rank < k_lo
    else:
        sure = np.zeros(n, dtype=bool)
    v_hi = np.partition(neg, k_hi - 1)[k_hi - 1]
    cand = np.nonzero(~sure & (neg <= v_hi))[0]  # every unit that can sit at ranks k_lo..k_hi-1
    order = cand[np.argsort(neg[cand], kind="stable")]  # score desc, then position
    room = target - int(sizes[sure].sum())
    keep[sure] = True
    keep[order[np.cumsum(sizes[order]) <= room]] = True
    return keep


def _select_reference(scores: np.ndarray, sizes: np.ndarray, target: int) -> np.ndarray:
    """The plain definition of :func:`_select` (a full stable sort), kept for the tests."""
    order = np.argsort(-scores, kind="stable")
    keep = np.zeros(scores.size, dtype=bool)
    keep[order[np.cumsum(sizes[order]) <= target]] = True
    return keep


def _expand(unit_keep: np.ndarray, fft_size: int) -> np.ndarray:
    """[K, U] unit decisions -> [K, F] position mask."""
    reps, partners, _ = _units(fft_size)
    mask = np.zeros((unit_keep.shape[0], num_frequencies(fft_size)), dtype=bool)
    mask[:, reps] = unit_keep
    mask[:, partners] |= unit_keep
    return mask


def _layer_args(wf, density) -> tuple[np.ndarray, float, int, int]:
    """(spectra [Cout, Cin, N, N//2+1], density, N, F) of one layer, checked."""
    wf = np.asarray(wf)
    if wf.ndim != 4 or wf.shape[-1] != half_width(wf.shape[-2]):
        raise UsageError(f"spectral kernels must have shape [Cout, Cin, N, N//2+1], got {wf.shape}")
    n = wf.shape[-2]
    return wf, check_density(density), n, num_frequencies(n)


def magnitude_mask(wf, density: float, scope: str = "layer") -> np.ndarray:
    """Hermitian-consistent keep mask, bool [Cout, Cin, N, N//2+1], of one layer's spectra ``wf``.

    ``scope``: "layer" (one threshold for the layer) or "kernel" (each kernel keeps
    ``round(density * F)`` entries)."""
    wf, d, n, f_count = _layer_args(wf, density)
    scores = _unit_scores(wf)
    _, _, sizes = _units(n)
    kernels = scores.shape[0]
    if scope == "layer":
        keep = _select(scores.ravel(), np.tile(sizes, kernels), int(round(d * kernels * f_count)))
        unit_keep = keep.reshape(scores.shape)
    elif scope == "kernel":
        target = int(round(d * f_count))
        order = np.argsort(-scores, axis=1, kind="stable")
        keep_sorted = np.cumsum(sizes[order], axis=1) <= target
        unit_keep = np.zeros_like(keep_sorted)
        np.put_along_axis(unit_keep, order, keep_sorted, axis=1)
    else:
        raise UnknownNameError("pruning scope for one layer", scope, ("layer", "kernel"))
    return _expand(unit_keep, n).reshape(wf.shape)


def bank_balanced_mask(wf, density: float, bank_of, banks: int, pes: int, ports: int = 1) -> np.ndarray:
    """Hermitian-consistent keep mask, bool [Cout, Cin, N, N//2+1], with ``round(density * F)``
    entries per kernel (as scope "kernel") chosen so that in every group of ``pes`` kernels
    (input channel i, output channels g*pes .. g*pes+pes-1) no bank of ``bank_of`` (int [F]:
    the bank of each half-plane position, e.g. :func:`flexspec.schedule.model.bank_map`) serves
    more than ``ports * round(density * F)`` reads where the group allows it (greedy by
    magnitude; :func:`flexspec.spectral._bank_kernels.capped_group_keep`)."""
    from ._bank_kernels import capped_group_keep  # numba compile on first use

    wf, d, n, f_count = _layer_args(wf, density)
    bank_of = np.asarray(bank_of, dtype=np.int64)
    if bank_of.shape != (f_count,) or bank_of.min() < 0 or bank_of.max() >= banks:
        raise UsageError(f"bank_of must hold {f_count} banks in 0..{banks - 1}, got shape {bank_of.shape}")
    if pes < 1 or ports < 1:
        raise UsageError(f"pes and ports must be >= 1, got {pes} and {ports}")
    cout, cin = wf.shape[:2]
    scores = _unit_scores(wf).reshape(cout, cin, -1)
    reps, partners, sizes = _units(n)
    target = int(round(d * f_count))
    unit_keep = np.zeros(scores.shape, dtype=bool)
    bank_a, bank_b = bank_of[reps], bank_of[partners]
    for i in range(cin):
        for g in range(0, cout, pes):
            unit_keep[g:g + pes, i] = capped_group_keep(np.ascontiguousarray(scores[g:g + pes, i]), sizes, bank_a,
                                                        bank_b, target, ports * target, banks)
    return _expand(unit_keep.reshape(cout * cin, -1), n).reshape(wf.shape)


def magnitude_masks(spectra: Mapping, density, scope: str = "layer") -> dict:
    """Masks for several layers (name -> spectra [Cout, Cin, N, N//2+1]).

    ``density``: a float or a per-layer schedule (mapping, see :func:`resolve_densities`);
    ``scope="global"`` ranks all layers' units together and needs a single density."""
    if not spectra:
        raise UsageError("nothing to prune: the model has no spectral-eligible convolution "
                         "(stride 1, groups 1, square kernel larger than 1x1)")
    if scope not in SCOPES:
        raise UnknownNameError("pruning scope", scope, SCOPES)
    if scope != "global":
        dens = resolve_densities(spectra, density)
        return {name: magnitude_mask(wf, dens[name], scope) for name, wf in spectra.items()}
    if isinstance(density, Mapping):
        raise UsageError("global pruning takes one density, not a per-layer schedule")
    d = check_density(density)
    scores, sizes, shapes = [], [], []
    for wf in spectra.values():
        wf = np.asarray(wf)
        s = _unit_scores(wf)
        scores.append(s.ravel())
        sizes.append(np.tile(_units(wf.shape[-2])[2], s.shape[0]))
        shapes.append((wf.shape, s.shape))
    total = sum(int(np.prod(shape[0])) for shape in shapes)
    keep = _select(np.concatenate(scores), np.concatenate(sizes), int(round(d * total)))
    out, start = {}, 0
    for name, (shape, sshape) in zip(spectra, shapes, strict=True):
        count = int(np.prod(sshape))
        out[name] = _expand(keep[start:start + count].reshape(sshape), shape[-2]).reshape(shape)
        start += count
    return out


def magnitude_prune(spectra: Mapping, kernel_sizes: Mapping, density, scope: str = "layer", **bits) -> dict:
    """Prune several layers to SparseSpectralKernels (name -> sparse kernels); ``bits``: value_bits,
    index_bits passed to :meth:`SparseSpectralKernels.from_dense`."""
    masks = magnitude_masks(spectra, density, scope)
    return {name: SparseSpectralKernels.from_dense(spectra[name], masks[name], kernel_sizes[name], **bits)
            for name in spectra}
