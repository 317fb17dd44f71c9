"""The memory model and the schedule data structure.

Memory model
------------
The transformed input tile ``X[t, i]`` (``F = N*(N//2+1)`` complex values) is spread over
``banks`` on-chip memory banks with ``ports`` read ports each.  ``bank_of[f]`` is the bank
that holds frequency position ``f``; inside its bank, ``f`` sits at address
``bank_addresses(bank_of)[f]`` (its rank among the frequencies of that bank).  In one cycle a
bank serves at most ``ports`` reads; with ``broadcast`` it serves at most ``ports`` distinct
*addresses*, any number of PEs reading the same address sharing one port.

Schedule
--------
One entry per read ``(group, pe, index, cycle)``: in cycle ``cycle`` (numbered from 0 inside
its group) PE ``pe`` of kernel group ``group`` reads frequency ``index`` of the tile.  Entries
are sorted by ``(group, cycle, pe)``.  ``cycles[g]`` is the makespan of group ``g`` and
``lower_bound[g]`` a proven lower bound on it for the memory model (see :mod:`.bounds`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import FORMAT_VERSION
from ..errors import FlexSpecError, InputFileError, UnknownNameError, UsageError
from ..fileio import save_npz
from ..spectral.geometry import fft_size_from_frequencies

#: Scheduling methods (``broadcast`` is the broadcast-aware heuristic).
METHODS = ("optimal", "greedy", "inorder", "broadcast")
#: Bank maps that :func:`bank_map` can build.
BANK_MAPS = ("mod", "auto")


class ScheduleError(FlexSpecError):
    """A schedule breaks a rule of the memory model (raised by :func:`flexspec.schedule.validate`)."""


def _check_count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UsageError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class BankConfig:
    """Banks, read ports per bank, broadcast, and the frequency -> bank map (int [F])."""

    banks: int
    ports: int
    broadcast: bool
    bank_of: np.ndarray

    def __post_init__(self):
        _check_count("banks", self.banks)
        _check_count("ports", self.ports)
        bank_of = np.asarray(self.bank_of)
        if bank_of.ndim != 1 or bank_of.dtype.kind not in "iu":
            raise UsageError("bank map must be a 1-D integer array (one bank per frequency position)")
        if bank_of.size and (bank_of.min() < 0 or bank_of.max() >= self.banks):
            raise UsageError(f"bank map holds a bank outside 0..{self.banks - 1}")

    @property
    def num_frequencies(self) -> int:
        return int(np.asarray(self.bank_of).size)

    @property
    def addresses(self) -> np.ndarray:
        """Address of each frequency inside its bank (int [F])."""
        return bank_addresses(self.bank_of)

    @property
    def bank_depth(self) -> int:
        """Words per bank needed for one tile (the most frequencies any bank holds)."""
        return int(np.bincount(np.asarray(self.bank_of), minlength=self.banks).max(initial=0))


def bank_addresses(bank_of) -> np.ndarray:
    """Address of each frequency inside its bank: its rank among that bank's frequencies (int [F])."""
    bank_of = np.asarray(bank_of, dtype=np.int64)
    order = np.argsort(bank_of, kind="stable")
    sorted_banks = bank_of[order]
    starts = np.searchsorted(sorted_banks, sorted_banks, side="left")
    addr = np.empty_like(bank_of)
    addr[order] = np.arange(bank_of.size) - starts
    return addr


def bank_map(mask_or_counts, banks: int, kind: str = "mod") -> np.ndarray:
    """Frequency -> bank map (int64 [F]).

    ``mask_or_counts``: a boolean mask ``[..., F]`` (reads per frequency are summed over all
    leading axes) or integer read counts ``[F]``.

    * ``mod``: ``f mod banks``.
    * ``auto``: balance the read load per bank (longest-processing-time first: frequencies in
      decreasing order of reads, each to the least-loaded bank that still has room), with at
      most ``ceil(F / banks)`` frequencies per bank so the bank depth equals that of ``mod``.
      Deterministic (ties broken by frequency index, then bank index).
    """
    banks = _check_count("banks", banks)
    arr = np.asarray(mask_or_counts)
    if arr.ndim == 0:
        raise UsageError("bank_map needs a mask [..., F] or counts [F]")
    if arr.dtype == bool:
        counts = arr.reshape(-1, arr.shape[-1]).sum(axis=0, dtype=np.int64)
    elif arr.dtype.kind in "iu" and arr.ndim == 1:
        counts = arr.astype(np.int64)
    else:
        raise UsageError(f"bank_map needs a boolean mask or 1-D integer counts, got {arr.dtype} rank {arr.ndim}")
    num_freq = counts.size
    if kind == "mod":
        return np.arange(num_freq, dtype=np.int64) % banks
    if kind != "auto":
        raise UnknownNameError("bank map", str(kind), BANK_MAPS)
    capacity = -(-num_freq // banks)
    order = np.lexsort((np.arange(num_freq), -counts))
    load = np.zeros(banks, dtype=np.int64)
    held = np.zeros(banks, dtype=np.int64)
    out = np.empty(num_freq, dtype=np.int64)
    big = np.iinfo(np.int64).max
    for f in order:  # F is small (tens to hundreds): a Python loop over frequencies is fine
        key = np.where(held < capacity, load, big)
        # least load, then fewest frequencies held, then lowest bank index
        b = int(np.lexsort((np.arange(banks), held, key))[0])
        out[f] = b
        load[b] += counts[f]
        held[b] += 1
    return out


def resolve_bank_map(bank_map_arg, mask, banks: int) -> np.ndarray:
    """``bank_map_arg`` as given to the schedulers ('mod', 'auto' or an int array [F]) -> int64 [F]."""
    num_freq = mask.shape[-1]
    if isinstance(bank_map_arg, str):
        return bank_map(mask, banks, bank_map_arg)
    arr = np.asarray(bank_map_arg)
    if arr.ndim != 1 or arr.size != num_freq or arr.dtype.kind not in "iu":
        raise UsageError(f"bank map must be 'mod', 'auto' or an integer array of {num_freq} banks")
    if arr.size and (arr.min() < 0 or arr.max() >= banks):
        raise UsageError(f"bank map holds a bank outside 0..{banks - 1}")
    return arr.astype(np.int64)


_ARRAY_FIELDS = ("group", "pe", "index", "cycle", "bank_of", "cycles", "lower_bound")


@dataclass(frozen=True, eq=False)
class Schedule:
    """Reads of every kernel group, in cycles.  See the module docstring."""

    group: np.ndarray  # int [n]  kernel group of each read
    pe: np.ndarray  # int [n]  PE (slot in the group) of each read
    index: np.ndarray  # int [n]  frequency position read
    cycle: np.ndarray  # int [n]  cycle inside the group, from 0
    bank_of: np.ndarray  # int [F]
    cycles: np.ndarray  # int [G] makespan per group
    lower_bound: np.ndarray  # int [G]
    banks: int
    ports: int
    broadcast: bool
    method: str
    num_pes: int
    num_frequencies: int

    # ---- sizes -----------------------------------------------------------------------------
    @property
    def num_groups(self) -> int:
        return int(self.cycles.size)

    @property
    def fft_size(self) -> int:
        return fft_size_from_frequencies(self.num_frequencies)

    @property
    def nnz(self) -> int:
        return int(self.index.size)

    @property
    def total_cycles(self) -> int:
        return int(self.cycles.sum())

    @property
    def total_lower_bound(self) -> int:
        return int(self.lower_bound.sum())

    @property
    def extra_cycles(self) -> int:
        """Cycles above the lower bound, summed over groups."""
        return self.total_cycles - self.total_lower_bound

    @property
    def pe_utilization(self) -> float:
        """nnz / (P * total cycles); 0.0 for an empty schedule."""
        denom = self.num_pes * self.total_cycles
        return self.nnz / denom if denom else 0.0

    @property
    def bank_config(self) -> BankConfig:
        return BankConfig(self.banks, self.ports, self.broadcast, self.bank_of)

    # ---- per group -------------------------------------------------------------------------
    def group_slice(self, g: int) -> slice:
        """Entries of group ``g`` (the arrays are sorted by group)."""
        if not 0 <= g < self.num_groups:
            raise UsageError(f"group {g} out of range 0..{self.num_groups - 1}")
        lo, hi = np.searchsorted(self.group, [g, g + 1], side="left")
        return slice(int(lo), int(hi))

    def group_table(self, g: int) -> np.ndarray:
        """Frequency index read per (cycle, PE) of group ``g``: int64 [cycles[g], P], -1 = PE idles."""
        s = self.group_slice(g)
        table = np.full((int(self.cycles[g]), self.num_pes), -1, dtype=np.int64)
        table[self.cycle[s], self.pe[s]] = self.index[s]
        return table

    # ---- files -----------------------------------------------------------------------------
    def to_arrays(self) -> dict:
        return {
            "format_version": np.int64(FORMAT_VERSION),
            **{name: getattr(self, name) for name in _ARRAY_FIELDS},
            "banks": np.int64(self.banks),
            "ports": np.int64(self.ports),
            "broadcast": np.bool_(self.broadcast),
            "method": np.str_(self.method),
            "num_pes": np.int64(self.num_pes),
            "num_frequencies": np.int64(self.num_frequencies),
        }

    def save(self, path) -> Path:
        """Write an npz (atomic: temp file in the same folder, then rename).  Returns the path."""
        return save_npz_atomic(path, self.to_arrays())

    @classmethod
    def load(cls, path) -> Schedule:
        """Read a schedule written by :meth:`save`; a bad file raises InputFileError naming the field."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                raw = {k: data[k] for k in data.files}
        except FileNotFoundError:
            raise InputFileError(path, "file not found") from None
        except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error
            raise InputFileError(path, f"not a readable npz file ({exc})") from None

        def need(name):
            if name not in raw:
                raise InputFileError(path, "missing (not a FlexSpec schedule file?)", name)
            return raw[name]

        version = need("format_version")
        if version.shape != () or int(version) != FORMAT_VERSION:
            raise InputFileError(
                path, f"format version {version} is not supported (expected {FORMAT_VERSION})", "format_version"
            )
        arrays = {}
        for name in _ARRAY_FIELDS:
            arr = need(name)
            if arr.ndim != 1 or arr.dtype.kind not in "iu":
                raise InputFileError(path, f"must be a 1-D integer array, got {arr.dtype} rank {arr.ndim}", name)
            arrays[name] = arr
        n = arrays["group"].size
        for name in ("pe", "index", "cycle"):
            if arrays[name].size != n:
                raise InputFileError(path, f"has {arrays[name].size} entries, 'group' has {n}", name)
        if arrays["lower_bound"].size != arrays["cycles"].size:
            raise InputFileError(path, "must have one entry per group like 'cycles'", "lower_bound")
        scalars = {}
        for name in ("banks", "ports", "num_pes", "num_frequencies"):
            arr = need(name)
            if arr.shape != () or arr.dtype.kind not in "iu" or int(arr) < 1:
                raise InputFileError(path, "must be a positive integer scalar", name)
            scalars[name] = int(arr)
        if arrays["bank_of"].size != scalars["num_frequencies"]:
            raise InputFileError(path, f"must have {scalars['num_frequencies']} entries", "bank_of")
        broadcast = need("broadcast")
        if broadcast.shape != () or broadcast.dtype != bool:
            raise InputFileError(path, "must be a boolean scalar", "broadcast")
        method = need("method")
        if method.shape != () or method.dtype.kind != "U" or str(method) not in METHODS:
            raise InputFileError(path, f"must be one of {', '.join(METHODS)}", "method")
        return cls(
            **arrays, banks=scalars["banks"], ports=scalars["ports"], broadcast=bool(broadcast),
            method=str(method), num_pes=scalars["num_pes"], num_frequencies=scalars["num_frequencies"],
        )


def save_npz_atomic(path, arrays: dict) -> Path:
    """np.savez, atomically (never a half-written file); the folder must exist."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"output folder {folder} does not exist")
    return save_npz(path, arrays)
