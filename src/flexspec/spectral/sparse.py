"""Sparse spectral kernels: storage format, Hermitian consistency, byte accounting, sparse OaA.

One layer's pruned spectral kernels are a :class:`SparseSpectralKernels`: for each
(output channel j, input channel i) kernel, in row-major order ``k = j * Cin + i``, the kept
frequency positions ``indices[indptr[k]:indptr[k+1]]`` (sorted, into the half-plane of
``F = N * (N//2 + 1)`` positions, ``f = row * (N//2+1) + col``) and their complex values
``values[indptr[k]:indptr[k+1]]`` -- CSR with one row per kernel.

Hermitian consistency (so that the inverse transform stays real): in the stored half-plane,
column 0 and, for even N, column N/2 hold both members of conjugate pairs
``X[(-r) % N, c] = conj(X[r, c])``.  A consistent kernel keeps or prunes both members of
each pair together, their values are conjugates, and the four self-conjugate bins (DC and
Nyquist: rows {0, N/2} x columns {0, N/2}) hold real values.  :meth:`from_dense` projects
the values onto that subspace (:func:`hermitian_project`); the constructor refuses a mask
that breaks a pair.

Hardware accounting: every kept entry costs ``2 * value_bits`` (real and imaginary part,
fixed point, default 16 bits each) plus ``index_bits`` (default ``ceil(log2 F)``, 6 for
N = 8): :func:`sparse_kernel_bits`, this file's widths applied to the one formula every stage
uses (:mod:`flexspec.kernel_format`).
"""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import FORMAT_VERSION
from ..errors import InputFileError, UsageError
from ..fileio import save_npz
from ..kernel_format import DEFAULT_VALUE_BITS, KernelFormat, default_index_bits  # noqa: F401  (re-exported)
from . import _oaa_kernels as _kernels
from .geometry import check_fft_size, half_width, num_frequencies
from .oaa import padding_pair
from .transform import dft_matrices


# --------------------------------------------------------------------------- Hermitian helpers
def conjugate_partner(fft_size: int) -> np.ndarray:
    """int64 [F]: for each half-plane position f, the position of its conjugate twin when that twin
    is also in the half-plane (column 0, and column N/2 for even N); otherwise f itself.

    Self-conjugate bins (DC/Nyquist) are their own partner too; see :func:`self_conjugate`.
    """
    n, m = fft_size, half_width(fft_size)
    rows, cols = np.divmod(np.arange(n * m), m)
    twin_col = (-cols) % n
    in_plane = twin_col < m
    partner = np.where(in_plane, ((-rows) % n) * m + twin_col, np.arange(n * m))
    return partner.astype(np.int64)


def self_conjugate(fft_size: int) -> np.ndarray:
    """bool [F]: positions whose value must be real (their twin is themselves: DC and Nyquist bins)."""
    n, m = fft_size, half_width(fft_size)
    rows, cols = np.divmod(np.arange(n * m), m)
    return (((-rows) % n) == rows) & (((-cols) % n) == cols)


def hermitian_project(wf) -> np.ndarray:
    """Orthogonal projection of half-plane spectra [..., N, N//2+1] onto the spectra of real N x N
    signals: twins in columns 0 and N/2 become conjugates (their average), DC/Nyquist bins real.

    Positions outside those columns are unchanged; a Hermitian-consistent support is preserved.
    ``irfft2`` of the result equals ``irfft2`` of the input.
    """
    wf = np.asarray(wf)
    n, m = wf.shape[-2], wf.shape[-1]
    if m != half_width(n):
        raise UsageError(f"spectra must have shape [..., N, N//2+1], got {wf.shape}")
    out = np.array(wf, dtype=np.result_type(wf.dtype, np.complex64), copy=True)
    cols = [0] + ([n // 2] if n % 2 == 0 and n // 2 != 0 else [])
    rows = (-np.arange(n)) % n
    for c in cols:
        col = wf[..., :, c]
        out[..., :, c] = 0.5 * (col + np.conj(col[..., rows]))
    return out


def mask_violations(mask, fft_size: int) -> int:
    """How many kept positions have a pruned conjugate twin (0 for a Hermitian-consistent mask).

    ``mask``: bool [..., F] or [..., N, N//2+1]."""
    mask = np.asarray(mask, dtype=bool)
    flat = mask.reshape(mask.shape[:-2] + (-1,)) if mask.shape[-1] == half_width(fft_size) and \
        mask.ndim >= 2 and mask.shape[-2] == fft_size else mask
    return int(np.count_nonzero(flat & ~flat[..., conjugate_partner(fft_size)]))


def hermitian_error(wf) -> float:
    """Largest deviation of half-plane spectra from Hermitian symmetry (0 for spectra of real signals)."""
    wf = np.asarray(wf)
    if wf.size == 0:
        return 0.0
    return float(np.max(np.abs(hermitian_project(wf) - wf)))


# --------------------------------------------------------------------------- accounting
def sparse_kernel_bits(nnz, value_bits: int = DEFAULT_VALUE_BITS, index_bits: int = 6):
    """Bits that ``nnz`` kept spectral entries cost in memory: nnz * (2 * value_bits + index_bits).

    Works elementwise on integer arrays; :meth:`flexspec.kernel_format.KernelFormat.kernel_bits`
    (the one formula every stage uses) with this file's widths.
    """
    return KernelFormat(int(value_bits), int(index_bits)).kernel_bits(nnz)


def twin_once_counts(mask, fft_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(stored entries, real-only entries) per kernel when each Hermitian twin is stored once.

    ``mask``: bool [..., F].  A kept entry is dropped when its conjugate twin is also kept and
    has the smaller position (the reader regenerates it); kept self-conjugate bins stay but store
    only their real part.  Feed both to :meth:`KernelFormat.kernel_bits`."""
    mask = np.asarray(mask, dtype=bool)
    partner = conjugate_partner(fft_size)
    dropped = mask & mask[..., partner] & (partner < np.arange(partner.size))
    real = mask & self_conjugate(fft_size)
    return (mask.sum(-1, dtype=np.int64) - dropped.sum(-1, dtype=np.int64), real.sum(-1, dtype=np.int64))


def _index_dtype(fft_size: int):
    return np.uint16 if num_frequencies(fft_size) <= np.iinfo(np.uint16).max + 1 else np.int32


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    if a.flags.writeable:
        a = a.copy() if a.base is not None else a
        a.setflags(write=False)
    return a


# --------------------------------------------------------------------------- one layer
@dataclass(frozen=True, eq=False)
class SparseSpectralKernels:
    """The pruned spectral kernels of one layer, CSR by kernel (see the module doc)."""

    fft_size: int
    kernel_size: int
    out_channels: int
    in_channels: int
    indptr: np.ndarray  # int64 [Cout*Cin + 1]
    indices: np.ndarray  # uint16 (int32 for huge N) [nnz], positions in the half-plane
    values: np.ndarray  # complex64 [nnz]
    value_bits: int = DEFAULT_VALUE_BITS
    index_bits: int | None = None  # default ceil(log2 F)

    def __post_init__(self):
        check_fft_size(self.fft_size, self.kernel_size)
        for name in ("out_channels", "in_channels"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise UsageError(f"{name} must be a positive integer, got {v!r}")
        if self.index_bits is None:
            object.__setattr__(self, "index_bits", default_index_bits(self.fft_size))
        if int(self.value_bits) < 1 or int(self.index_bits) < default_index_bits(self.fft_size):
            raise UsageError(f"value_bits must be >= 1 and index_bits >= {default_index_bits(self.fft_size)} "
                             f"for N={self.fft_size}; got {self.value_bits}, {self.index_bits}")
        kernels = self.out_channels * self.in_channels
        f_count = num_frequencies(self.fft_size)
        indptr = np.asarray(self.indptr, dtype=np.int64)
        indices = np.asarray(self.indices)
        values = np.asarray(self.values)
        if indptr.shape != (kernels + 1,) or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
            raise UsageError(f"indptr must be a non-decreasing int array of length Cout*Cin+1 = {kernels + 1} "
                             f"starting at 0; got shape {indptr.shape}")
        nnz = int(indptr[-1])
        if indices.shape != (nnz,) or values.shape != (nnz,):
            raise UsageError(f"indices and values must have length indptr[-1] = {nnz}; "
                             f"got {indices.shape} and {values.shape}")
        if nnz and (indices.min() < 0 or indices.max() >= f_count):
            raise UsageError(f"indices must lie in [0, {f_count}) for N={self.fft_size}")
        indices = indices.astype(_index_dtype(self.fft_size))
        rows = np.repeat(np.arange(kernels, dtype=np.int64), np.diff(indptr))
        keys = rows * f_count + indices
        if nnz > 1 and np.any(np.diff(keys) <= 0):
            raise UsageError("indices must be strictly increasing within each kernel")
        mask = np.zeros((kernels, f_count), dtype=bool)
        mask[rows, indices] = True
        bad = mask_violations(mask, self.fft_size)
        if bad:
            raise UsageError(f"{bad} kept frequency positions have a pruned conjugate twin; prune twins in "
                             f"columns 0 and N/2 together (Hermitian consistency)")
        object.__setattr__(self, "indptr", _frozen(indptr))
        object.__setattr__(self, "indices", _frozen(indices))
        object.__setattr__(self, "values", _frozen(values.astype(np.complex64)))
        object.__setattr__(self, "value_bits", int(self.value_bits))
        object.__setattr__(self, "index_bits", int(self.index_bits))

    # ---- construction
    @classmethod
    def from_dense(cls, wf, mask=None, kernel_size: int = 3, *, value_bits: int = DEFAULT_VALUE_BITS,
                   index_bits: int | None = None, project: bool = True) -> SparseSpectralKernels:
        """Keep ``wf`` [Cout, Cin, N, N//2+1] where ``mask`` (bool, same shape or [Cout, Cin, F]) is true
        (default: where ``wf`` is non-zero).  With ``project`` the kept values are made Hermitian
        (:func:`hermitian_project`), which does not change what the layer computes."""
        wf = np.asarray(wf)
        if wf.ndim != 4 or wf.shape[-1] != half_width(wf.shape[-2]):
            raise UsageError(f"spectral kernels must have shape [Cout, Cin, N, N//2+1], got {wf.shape}")
        cout, cin, n, m = wf.shape
        mask = (wf != 0) if mask is None else np.asarray(mask, dtype=bool)
        if mask.shape == (cout, cin, n * m):
            mask = mask.reshape(cout, cin, n, m)
        if mask.shape != wf.shape:
            raise UsageError(f"mask shape {mask.shape} does not match kernels {wf.shape}")
        kept = np.where(mask, hermitian_project(wf) if project else wf, 0)
        if project:
            kept = np.where(mask, hermitian_project(kept), 0)
        flat_mask = mask.reshape(cout * cin, n * m)
        rows, cols = np.nonzero(flat_mask)
        indptr = np.zeros(cout * cin + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=cout * cin), out=indptr[1:])
        values = kept.reshape(cout * cin, n * m)[rows, cols]
        return cls(n, int(kernel_size), cout, cin, indptr, cols, values, value_bits, index_bits)

    # ---- views
    @property
    def num_frequencies(self) -> int:
        return num_frequencies(self.fft_size)

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    @property
    def density(self) -> float:
        """Kept fraction of all stored half-plane positions."""
        return self.nnz / (self.out_channels * self.in_channels * self.num_frequencies)

    def nnz_per_kernel(self) -> np.ndarray:
        """int64 [Cout, Cin]: kept entries of each kernel."""
        return np.diff(self.indptr).reshape(self.out_channels, self.in_channels)

    def kernel_ids(self) -> np.ndarray:
        """int64 [nnz]: kernel k = j*Cin + i of each stored entry."""
        return np.repeat(np.arange(self.out_channels * self.in_channels, dtype=np.int64), np.diff(self.indptr))

    def mask(self) -> np.ndarray:
        """bool [Cout, Cin, F]: kept positions."""
        out = np.zeros((self.out_channels * self.in_channels, self.num_frequencies), dtype=bool)
        out[self.kernel_ids(), self.indices] = True
        return out.reshape(self.out_channels, self.in_channels, self.num_frequencies)

    def dense(self) -> np.ndarray:
        """complex64 [Cout, Cin, N, N//2+1] with zeros at pruned positions."""
        out = np.zeros((self.out_channels * self.in_channels, self.num_frequencies), dtype=np.complex64)
        out[self.kernel_ids(), self.indices] = self.values
        return out.reshape(self.out_channels, self.in_channels, self.fft_size, half_width(self.fft_size))

    def kernel(self, j: int, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(positions, values) kept by kernel (j, i)."""
        k = j * self.in_channels + i
        lo, hi = self.indptr[k], self.indptr[k + 1]
        return self.indices[lo:hi], self.values[lo:hi]

    # ---- hardware accounting
    @property
    def entry_bits(self) -> int:
        """Bits of one kept entry: 2 * value_bits + index_bits."""
        return int(sparse_kernel_bits(1, self.value_bits, self.index_bits))

    def kernel_bits(self, j: int | None = None, i: int | None = None):
        """Bits of kernel (j, i); with no arguments, int64 [Cout, Cin] for every kernel."""
        per = sparse_kernel_bits(self.nnz_per_kernel(), self.value_bits, self.index_bits)
        if j is None and i is None:
            return per
        return int(per[j, i])

    def total_bits(self) -> int:
        return int(sparse_kernel_bits(self.nnz, self.value_bits, self.index_bits))

    def total_bytes(self) -> int:
        """Bytes of the whole layer's sparse kernels, ceil(total_bits / 8)."""
        return -(-self.total_bits() // 8)

    def dense_bytes(self) -> int:
        """Bytes of the unpruned half-plane kernels at the same value width (no indices)."""
        return -(-(self.out_channels * self.in_channels * self.num_frequencies * 2 * self.value_bits) // 8)

    # ---- comparison
    def equals(self, other: SparseSpectralKernels) -> bool:
        """Exact equality of every field and array."""
        return (
            isinstance(other, SparseSpectralKernels)
            and (self.fft_size, self.kernel_size, self.out_channels, self.in_channels, self.value_bits,
                 self.index_bits)
            == (other.fft_size, other.kernel_size, other.out_channels, other.in_channels, other.value_bits,
                other.index_bits)
            and np.array_equal(self.indptr, other.indptr)
            and np.array_equal(self.indices, other.indices)
            and np.array_equal(self.values, other.values)
        )

    # ---- files
    def _arrays(self, prefix: str = "") -> dict:
        return {
            f"{prefix}fft_size": np.int64(self.fft_size), f"{prefix}kernel_size": np.int64(self.kernel_size),
            f"{prefix}out_channels": np.int64(self.out_channels),
            f"{prefix}in_channels": np.int64(self.in_channels),
            f"{prefix}indptr": self.indptr, f"{prefix}indices": self.indices, f"{prefix}values": self.values,
            f"{prefix}value_bits": np.int64(self.value_bits), f"{prefix}index_bits": np.int64(self.index_bits),
        }

    @classmethod
    def _from_arrays(cls, data, path, prefix: str = "") -> SparseSpectralKernels:
        args = {}
        for key in ("fft_size", "kernel_size", "out_channels", "in_channels", "value_bits", "index_bits"):
            args[key] = int(_field(data, path, prefix + key, scalar=True))
        for key in ("indptr", "indices", "values"):
            args[key] = _field(data, path, prefix + key)
        try:
            return cls(**args)
        except UsageError as exc:
            raise InputFileError(path, f"inconsistent sparse kernels: {exc}", prefix.rstrip("/") or None) from None

    def save(self, path) -> Path:
        """Write one .npz (atomic: a temporary file in the same folder, then rename)."""
        data = {"format_version": np.int64(FORMAT_VERSION), "kind": np.array("sparse_spectral_kernels")}
        data.update(self._arrays())
        return _atomic_savez(path, data)

    @classmethod
    def load(cls, path) -> SparseSpectralKernels:
        with _open_npz(path, "sparse_spectral_kernels") as data:
            return cls._from_arrays(data, path)


# --------------------------------------------------------------------------- a whole network
@dataclass(frozen=True, eq=False)
class SparseNetworkKernels:
    """Pruned spectral kernels of a whole network, by layer name (the zoo's ConvLayer names).

    ``provenance`` says where the weights come from, e.g. "trained on Fashion-MNIST (shipped)",
    "synthesized from seed 0 by ...", "user state_dict <file>"; ``is_real`` is True only for trained
    weights.  ``biases`` holds each spectral layer's bias; ``params`` any other real-valued tensors
    (spatial layers, classifier) by name.
    """

    network: str
    fft_size: int
    layers: dict  # name -> SparseSpectralKernels, in execution order
    provenance: str
    is_real: bool
    biases: dict = field(default_factory=dict)  # name -> float32 [Cout]
    params: dict = field(default_factory=dict)  # name -> float32 array
    method: str = ""  # "magnitude", "admm", ...
    target_density: float | None = None
    #: Bank-friendly (hardware-aware, scope "bank") kernels: name -> int64 [F], the tile-buffer bank
    #: of each half-plane position that the pruning balanced the reads for, on designs of
    #: ``bank_map_banks`` banks (the accelerator schedules those layers with it there; 0: no maps).
    bank_maps: dict = field(default_factory=dict)
    bank_map_banks: int = 0

    def __post_init__(self):
        if self.bank_maps and (not isinstance(self.bank_map_banks, int) or self.bank_map_banks < 1):
            raise UsageError(f"bank maps need their bank count (bank_map_banks >= 1), got {self.bank_map_banks!r}")
        for name, bmap in self.bank_maps.items():
            if name not in self.layers:
                raise UsageError(f"bank map for unknown layer '{name}'")
            f = self.layers[name].num_frequencies
            arr = np.asarray(bmap)
            if arr.shape != (f,) or not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 \
                    or arr.max() >= self.bank_map_banks:
                raise UsageError(f"bank map of '{name}' must hold {f} integer banks in 0..{self.bank_map_banks - 1}, "
                                 f"got {arr.dtype} {arr.shape}")
        for name, layer in self.layers.items():
            if not isinstance(layer, SparseSpectralKernels):
                raise UsageError(f"layer '{name}' is not SparseSpectralKernels")
            if layer.fft_size != self.fft_size:
                raise UsageError(f"layer '{name}' has FFT size {layer.fft_size}, network {self.fft_size}")
        for name, b in self.biases.items():
            if name not in self.layers:
                raise UsageError(f"bias for unknown layer '{name}'")
            if np.shape(b) != (self.layers[name].out_channels,):
                raise UsageError(f"bias of '{name}' has shape {np.shape(b)}, expected "
                                 f"({self.layers[name].out_channels},)")

    @property
    def nnz(self) -> int:
        return sum(layer.nnz for layer in self.layers.values())

    @property
    def density(self) -> float:
        total = sum(lay.out_channels * lay.in_channels * lay.num_frequencies for lay in self.layers.values())
        return self.nnz / total if total else 0.0

    def total_bytes(self) -> int:
        return sum(layer.total_bytes() for layer in self.layers.values())

    def bank_map(self, name: str, banks: int):
        """The bank map layer ``name`` was pruned for (int64 [F]) when a design has ``banks`` banks,
        else ``'auto'`` (the scheduler builds its own: ``flexspec.schedule.model.bank_map``)."""
        if banks != self.bank_map_banks or name not in self.bank_maps:
            return "auto"
        return np.asarray(self.bank_maps[name], dtype=np.int64)

    def equals(self, other: SparseNetworkKernels) -> bool:
        return (
            isinstance(other, SparseNetworkKernels)
            and (self.network, self.fft_size, self.provenance, self.is_real, self.method, self.target_density)
            == (other.network, other.fft_size, other.provenance, other.is_real, other.method,
                other.target_density)
            and list(self.layers) == list(other.layers)
            and all(self.layers[k].equals(other.layers[k]) for k in self.layers)
            and self.biases.keys() == other.biases.keys()
            and all(np.array_equal(self.biases[k], other.biases[k]) for k in self.biases)
            and self.params.keys() == other.params.keys()
            and all(np.array_equal(self.params[k], other.params[k]) for k in self.params)
            and self.bank_map_banks == other.bank_map_banks and self.bank_maps.keys() == other.bank_maps.keys()
            and all(np.array_equal(self.bank_maps[k], other.bank_maps[k]) for k in self.bank_maps)
        )

    def save(self, path) -> Path:
        data = {
            "format_version": np.int64(FORMAT_VERSION), "kind": np.array("sparse_network_kernels"),
            "network": np.array(self.network), "fft_size": np.int64(self.fft_size),
            "provenance": np.array(self.provenance), "is_real": np.bool_(self.is_real),
            "method": np.array(self.method),
            "target_density": np.float64(np.nan if self.target_density is None else self.target_density),
            "layer_names": np.array(list(self.layers), dtype=str),
            "param_names": np.array(list(self.params), dtype=str),
        }
        if self.bank_maps:  # optional: files without them (every earlier file) load with none
            data["bank_map_banks"] = np.int64(self.bank_map_banks)
            data.update({f"bank_map/{name}": np.asarray(m, dtype=np.int64) for name, m in self.bank_maps.items()})
        for name, layer in self.layers.items():
            data.update(layer._arrays(f"layer/{name}/"))
            if name in self.biases:
                data[f"bias/{name}"] = np.asarray(self.biases[name], dtype=np.float32)
        for name, value in self.params.items():
            data[f"param/{name}"] = np.asarray(value, dtype=np.float32)
        return _atomic_savez(path, data)

    @classmethod
    def load(cls, path) -> SparseNetworkKernels:
        with _open_npz(path, "sparse_network_kernels") as data:
            names = [str(n) for n in _field(data, path, "layer_names")]
            layers = {n: SparseSpectralKernels._from_arrays(data, path, f"layer/{n}/") for n in names}
            biases = {n: data[f"bias/{n}"].copy() for n in names if f"bias/{n}" in data.files}
            params = {str(n): _field(data, path, f"param/{n}") for n in _field(data, path, "param_names")}
            td = float(_field(data, path, "target_density", scalar=True))
            maps = {n: _field(data, path, f"bank_map/{n}") for n in names if f"bank_map/{n}" in data.files}
            map_banks = int(_field(data, path, "bank_map_banks", scalar=True)) if maps else 0
            try:
                return cls(
                    network=str(_field(data, path, "network", scalar=True)),
                    fft_size=int(_field(data, path, "fft_size", scalar=True)),
                    layers=layers, provenance=str(_field(data, path, "provenance", scalar=True)),
                    is_real=bool(_field(data, path, "is_real", scalar=True)), biases=biases, params=params,
                    method=str(_field(data, path, "method", scalar=True)),
                    target_density=None if math.isnan(td) else td, bank_maps=maps, bank_map_banks=map_banks,
                )
            except UsageError as exc:
                raise InputFileError(path, str(exc)) from None


# --------------------------------------------------------------------------- file helpers
def _atomic_savez(path, data: dict) -> Path:

    path = Path(path)
    if not path.parent.is_dir():
        raise InputFileError(path, "the folder does not exist")
    return save_npz(path, data, compressed=True)


class _open_npz:
    def __init__(self, path, kind: str):
        self.path, self.kind = Path(path), kind

    def __enter__(self):
        try:
            self.data = np.load(self.path, allow_pickle=False)
        except FileNotFoundError:
            raise InputFileError(self.path, "file not found") from None
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input error
            why = "not a zip archive of numpy arrays" if "pickle" in str(exc) else f"{exc.__class__.__name__}: {exc}"
            raise InputFileError(self.path, f"not a readable .npz file ({why})") from None
        if not hasattr(self.data, "files"):
            raise InputFileError(self.path, "not an .npz archive")
        version = int(_field(self.data, self.path, "format_version", scalar=True))
        if version != FORMAT_VERSION:
            raise InputFileError(self.path, f"format version {version}, this FlexSpec reads {FORMAT_VERSION}",
                                 "format_version")
        kind = str(_field(self.data, self.path, "kind", scalar=True))
        if kind != self.kind:
            raise InputFileError(self.path, f"holds '{kind}', expected '{self.kind}'", "kind")
        return self.data

    def __exit__(self, *exc):
        self.data.close()
        return False


def _field(data, path, key: str, scalar: bool = False):
    if key not in data.files:
        raise InputFileError(path, "missing", key)
    try:
        value = data[key]
    except Exception as exc:  # noqa: BLE001
        raise InputFileError(path, f"unreadable ({exc})", key) from None
    if scalar:
        if value.shape != ():
            raise InputFileError(path, f"expected a scalar, got shape {value.shape}", key)
        return value[()]
    return value


# --------------------------------------------------------------------------- sparse convolution
class SparseOaA:
    """The sparse OaA operator of one layer, built once and applied to many inputs.

    The kept values are held per frequency, CSR by output channel (row ``f * Cout + j``, entries
    over input channels as unsigned 16-bit indices, values as (real, imaginary) pairs in the value
    precision), each row padded with zero values to a multiple of the product's unroll.  A call cuts
    the input into tiles laid out in chunks of :data:`~flexspec.spectral._oaa_kernels.LANES` tiles
    (:func:`~flexspec.spectral._oaa_kernels.tiles_forward_lanes`, per range of input channels); then,
    per range of frequencies, transforms them with the rows of the half-plane DFT matrix
    (:func:`~flexspec.spectral.transform.dft_matrices`) and multiplies by the kept values only
    (:func:`~flexspec.spectral._oaa_kernels.sparse_product_lanes`: each kept value times one chunk
    of tile spectra, one vector register per plane); then, per range of output channels, transforms
    back and overlap-adds, crops and adds the bias.  All in numba, none of it through a BLAS or
    OpenMP pool: on the shared 2-core machine numpy's two OpenBLAS threads made the two small DFT
    GEMMs 80% of the layer's time at load ~10 (BENCHMARKS.md).

    ``threads``: how many threads share the work (input-channel ranges, frequency ranges holding about
    the same number of kept values, output-channel ranges; idle threads sleep); default: the
    machine's CPU count."""

    def __init__(self, ssk: SparseSpectralKernels, dtype=np.float32, threads: int | None = None):
        threads = (os.cpu_count() or 1) if threads is None else threads
        if not isinstance(threads, (int, np.integer)) or threads < 1:
            raise UsageError(f"threads must be a positive integer, got {threads!r}")
        self.ssk = ssk
        self.real = np.float64 if np.dtype(dtype) == np.float64 else np.float32
        cout, cin, f_count = ssk.out_channels, ssk.in_channels, ssk.num_frequencies
        unroll = _kernels.SPARSE_UNROLL
        j, i = np.divmod(ssk.kernel_ids(), cin)
        rows = ssk.indices.astype(np.int64) * cout + j
        order = np.lexsort((i, rows))
        counts = np.bincount(rows, minlength=f_count * cout)
        self.indptr = np.zeros(f_count * cout + 1, dtype=np.int64)
        np.cumsum(-(-counts // unroll) * unroll, out=self.indptr[1:])
        sorted_rows = rows[order]
        first = np.cumsum(counts) - counts  # where each row starts among the kept values
        at = self.indptr[sorted_rows] + np.arange(sorted_rows.size) - first[sorted_rows]
        self.channels = np.zeros(self.indptr[-1], dtype=np.uint16 if cin <= 1 << 16 else np.uint32)
        self.channels[at] = i[order]
        self.values = np.zeros((self.indptr[-1], 2), dtype=self.real)  # padding: zero values on channel 0
        self.values[at, 0] = ssk.values[order].real
        self.values[at, 1] = ssk.values[order].imag
        self.tile = ssk.fft_size - ssk.kernel_size + 1
        self.dft_d, self.dft_g = (a.astype(self.real) for a in dft_matrices(ssk.fft_size, self.tile))
        # frequency ranges of about equal kept values, one per thread (empty ranges dropped)
        per_frequency = self.indptr[::cout]
        cuts = np.searchsorted(per_frequency, np.linspace(0, self.indptr[-1], int(threads) + 1)[1:-1])
        bounds = np.unique(np.concatenate([[0], cuts, [f_count]]))
        self.frequency_ranges = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        self.channel_ranges, self.input_channel_ranges = (_even_ranges(c, int(threads)) for c in (cout, cin))
        self._pool = _product_pool(max(len(self.frequency_ranges), len(self.channel_ranges),
                                       len(self.input_channel_ranges)) - 1)

    def __call__(self, x, padding=0, bias=None) -> np.ndarray:
        """OaA convolution of ``x`` [B, Cin, H, W] (or [Cin, H, W]); equals
        :func:`~flexspec.spectral.oaa.oaa_conv2d_spectral` with ``ssk.dense()``."""
        ssk = self.ssk
        x = np.asarray(x)
        squeeze = x.ndim == 3
        if squeeze:
            x = x[None]
        if x.ndim != 4 or x.shape[1] != ssk.in_channels:
            raise UsageError(f"input must be [B, {ssk.in_channels}, H, W], got {x.shape}")
        real, n, k, h, lanes = self.real, ssk.fft_size, ssk.kernel_size, self.tile, _kernels.LANES
        ph, pw = padding_pair(padding)
        b, cin, height, width = x.shape
        cout, f_count = ssk.out_channels, ssk.num_frequencies
        out_h, out_w = height + 2 * ph - k + 1, width + 2 * pw - k + 1
        if out_h < 1 or out_w < 1:
            raise UsageError(f"kernel {k} is larger than the padded {height}x{width} input")
        bias = np.zeros(cout, dtype=real) if bias is None else np.asarray(bias, dtype=real)
        if bias.shape != (cout,):
            raise UsageError(f"bias must have shape ({cout},), got {bias.shape}")
        ty, tx = -(-height // h), -(-width // h)
        chunks = -(-(b * ty * tx) // lanes)
        tiles = np.empty((h, h, chunks, cin, lanes), dtype=real)
        self._on_threads(_kernels.tiles_forward_lanes, self.input_channel_ranges,
                         (np.ascontiguousarray(x, dtype=real), h, tiles))
        xs = np.empty((2, f_count, chunks, cin, lanes), dtype=real)
        y = np.empty((2, f_count, chunks, cout, lanes), dtype=real)
        self._on_threads(_kernels.sparse_spectra_and_product, self.frequency_ranges,
                         (tiles, self.dft_d, xs, self.indptr, self.channels, self.values, y))
        blocks = np.empty((n, n, chunks, cout, lanes), dtype=real)
        out = np.empty((b, cout, out_h, out_w), dtype=real)
        self._on_threads(_kernels.sparse_blocks_and_overlap_add, self.channel_ranges,
                         (self.dft_g, y, blocks, h, ty, tx, k - 1 - ph, k - 1 - pw, bias, out))
        return out[0] if squeeze else out

    def product(self, xs: np.ndarray, y: np.ndarray) -> None:
        """``y`` [2, F, chunks, Cout, LANES] = the kept kernels times the tile spectra ``xs``
        [2, F, chunks, Cin, LANES] (:func:`~flexspec.spectral._oaa_kernels.sparse_product_lanes`),
        one frequency range per thread (the product alone, as the benchmark profiles it)."""
        self._on_threads(_kernels.sparse_product_lanes, self.frequency_ranges,
                         (xs, self.indptr, self.channels, self.values, y))

    def _on_threads(self, kernel, ranges, args) -> None:
        """``kernel(*args, start, stop)`` for each range, the calling thread taking the first."""
        others = [self._pool.submit(kernel, *args, a, b) for a, b in ranges[1:]]
        kernel(*args, *ranges[0])
        for other in others:
            other.result()


def _even_ranges(count: int, parts: int) -> list:
    """``count`` items cut into at most ``parts`` contiguous ranges of nearly equal length."""
    bounds = np.unique(np.linspace(0, count, min(parts, count) + 1).round().astype(int))
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


@functools.cache
def _product_pool(helpers: int):
    """One shared pool of ``helpers`` threads per count (None for none); idle threads sleep."""
    return ThreadPoolExecutor(helpers, thread_name_prefix="flexspec-sparse") if helpers else None


def sparse_oaa_conv2d(x, ssk, padding=0, bias=None) -> np.ndarray:
    """OaA convolution of ``x`` [B, Cin, H, W] (or [Cin, H, W]) with sparse spectral kernels
    ``ssk`` (a SparseSpectralKernels, or a :class:`SparseOaA` built from one to reuse its operator).

    The per-frequency multiply-accumulate is a sparse-matrix product that reads only the kept
    values (gather of the tile spectrum at each kept (i, f), scaled, segment-summed into (j, f));
    the result equals :func:`~flexspec.spectral.oaa.oaa_conv2d_spectral` with ``ssk.dense()``.
    """
    if isinstance(ssk, SparseOaA):
        return ssk(x, padding, bias)
    return SparseOaA(ssk, np.float64 if np.asarray(x).dtype == np.float64 else np.float32)(x, padding, bias)
