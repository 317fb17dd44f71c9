"""How sparse spectral kernels and partial sums are stored: one definition, used by every stage.

The sparse kernel file (:mod:`flexspec.spectral.sparse`), the dataflow model
(:mod:`flexspec.dataflow`) and the simulator (:mod:`flexspec.accel.sim`) count kernel bits with
the functions of this module, so one quantity has one formula.  The stored schedule stream is
counted with the generated PE array's own word width (:meth:`flexspec.rtl.config.PEArrayConfig.word_bits`),
and a test holds it to the schedule memory of the generated RTL (``tests/dataflow/test_kernel_format.py``).
Where a PE-array design is known (the simulator, ``flexspec run`` / ``simulate``) the schedule stream
is the default count of kernel bits (:data:`flexspec.accel.design_dataflow.KERNEL_STORAGE`); packed
entries are the count of a pure dataflow analysis (``flexspec analyze``), which has no schedule.

Kernel entries (what the dataflow moves off chip and holds in its kernel buffer)
    A kept spectral entry is a complex value, ``value_bits`` for the real and as many for the
    imaginary part, plus the ``index_bits`` of its half-plane position (``ceil(log2 F)`` by
    default, 6 for N = 8): :func:`entry_bits`.  A kernel of ``nnz`` entries costs
    ``nnz * entry_bits + count_bits`` (:meth:`KernelFormat.kernel_bits`; ``count_bits`` is an
    optional per-kernel count word, 0 by default).  Kernels are packed back to back.

Hermitian twins stored once (``twins="once"``, a smaller candidate format)
    In the stored half-plane, columns 0 and N/2 hold both members of conjugate pairs; a
    Hermitian-consistent kernel keeps or prunes both together and their values are conjugates.
    Storing one member per pair (the reader regenerates the other) and only the real part of
    the four self-conjugate bins (DC / Nyquist, real-valued) saves
    ``dropped_twins * entry_bits + real_bins * value_bits`` per kernel.  The counts come from a
    mask (:func:`flexspec.spectral.sparse.twin_once_counts`).

Schedule stream (what the generated PE array stores, :mod:`flexspec.rtl.program`)
    The schedule/kernel memory of a PE array holds one word per schedule cycle, idle slots
    included: the B x R tile-buffer port addresses, then per PE valid | port select | first |
    accumulator address | row | kernel re | kernel im (``PEArrayConfig.word_bits``, the one
    formula; its address fields grow with the channels the tile buffer and the accumulators
    hold).  A group scheduled in ``makespan`` cycles costs ``makespan * word_bits``
    (:func:`schedule_stream_bits`); against the entry count this adds the idle slots (load
    imbalance, bank conflicts), the port addresses and the control fields.

Partial sums
    A PE accumulates real and imaginary parts in two ``acc_bits`` accumulators (48 bits, the
    DSP48 accumulator width): one complex partial sum is ``2 * acc_bits`` = 96 bits
    (:func:`psum_bits`); that is what goes off chip when a partial sum is spilled.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .errors import UsageError
from .spectral.geometry import num_frequencies

#: Fixed-point width of one real or imaginary part of a kernel value, in bits.
DEFAULT_VALUE_BITS = 16
#: Width of one real accumulator of a PE (real and imaginary parts each have one), in bits.
DEFAULT_ACC_BITS = 48
#: Ways of storing the conjugate twins of the half-plane's columns 0 and N/2.
TWIN_LAYOUTS = ("both", "once")


def default_index_bits(fft_size: int) -> int:
    """ceil(log2 F) bits address one of the F = N*(N//2+1) half-plane positions (6 for N = 8)."""
    return max(1, math.ceil(math.log2(num_frequencies(fft_size))))


def entry_bits(value_bits: int = DEFAULT_VALUE_BITS, index_bits: int = 6) -> int:
    """Bits of one kept spectral entry: a complex value (2 x value_bits) and its position."""
    return 2 * int(value_bits) + int(index_bits)


def psum_bits(acc_bits: int = DEFAULT_ACC_BITS) -> int:
    """Bits of one complex partial sum: a real and an imaginary accumulator of ``acc_bits``."""
    return 2 * int(acc_bits)


@dataclass(frozen=True)
class KernelFormat:
    """How one layer's sparse spectral kernels are stored.

    ``value_bits``: one real or imaginary part; ``index_bits`` None means
    :func:`default_index_bits`; ``count_bits``: per-kernel count word (0: none);
    ``twins``: 'both' (every kept entry stored) or 'once' (see the module doc)."""

    value_bits: int = DEFAULT_VALUE_BITS
    index_bits: int | None = None
    count_bits: int = 0
    twins: str = "both"

    def __post_init__(self):
        if not isinstance(self.value_bits, int) or isinstance(self.value_bits, bool) or self.value_bits < 1:
            raise UsageError(f"kernel format: value_bits must be a positive integer, got {self.value_bits!r}")
        if self.index_bits is not None and (not isinstance(self.index_bits, int) or self.index_bits < 0):
            raise UsageError(f"kernel format: index_bits must be None or an integer >= 0, got {self.index_bits!r}")
        if not isinstance(self.count_bits, int) or self.count_bits < 0:
            raise UsageError(f"kernel format: count_bits must be an integer >= 0, got {self.count_bits!r}")
        if self.twins not in TWIN_LAYOUTS:
            raise UsageError(f"kernel format: twins must be one of {', '.join(TWIN_LAYOUTS)}, got {self.twins!r}")

    def index_bits_for(self, fft_size: int | None) -> int:
        """The index width: explicit, else ceil(log2 F) of ``fft_size``."""
        if self.index_bits is not None:
            return self.index_bits
        if fft_size is None:
            raise UsageError("kernel format: index_bits is derived from the FFT size; give fft_size")
        return default_index_bits(fft_size)

    def entry_bits(self, fft_size: int | None = None) -> int:
        return entry_bits(self.value_bits, self.index_bits_for(fft_size))

    def kernel_bits(self, stored_entries, fft_size: int | None = None, real_entries=0) -> np.ndarray:
        """Bits of each kernel (int64, shape of ``stored_entries``): stored_entries * entry_bits
        - real_entries * value_bits + count_bits.  ``real_entries``: stored entries that keep
        only their real part (self-conjugate bins of the 'once' layout; 0 for 'both')."""
        stored = np.asarray(stored_entries, dtype=np.int64)
        real = np.asarray(real_entries, dtype=np.int64)
        return stored * self.entry_bits(fft_size) - real * self.value_bits + self.count_bits

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_FORMAT = KernelFormat()


def schedule_stream_bits(cycles, array) -> np.ndarray:
    """Bits of the stored schedule/kernel stream of each group (int64, shape of ``cycles``):
    ``cycles * array.word_bits()`` -- one schedule word per cycle, idle slots included.

    ``cycles``: each group's schedule makespan (``flexspec.schedule.Schedule.cycles``);
    ``array``: the :class:`flexspec.rtl.config.PEArrayConfig` that runs them (its ``word_bits``
    is the width of the generated schedule memory; :func:`flexspec.accel.grouping.stream_array`
    builds it for a simulated design).  This is what the generated RTL's schedule memory holds
    for the groups (:func:`flexspec.rtl.program.build_program`)."""
    word_bits = getattr(array, "word_bits", None)
    if not callable(word_bits):
        raise UsageError(f"array must be a flexspec.rtl.config.PEArrayConfig, got {type(array).__name__}")
    cycles = np.asarray(cycles, dtype=np.int64)
    if cycles.size and cycles.min() < 0:
        raise UsageError("schedule cycles must be >= 0")
    return cycles * int(word_bits())


def spread_over_kernels(groups, group_bits, num_kernels: int) -> np.ndarray:
    """Per-kernel share of per-group bits (int64 [num_kernels], summing exactly to ``group_bits``):
    each group's bits split evenly over its live kernels, the remainder to its first one.

    ``groups``: int [G, P] flat kernel ids (-1: idle PE), as the simulator's schedules hold them;
    ``group_bits``: int [G], e.g. :func:`schedule_stream_bits`.  Lets a per-kernel model
    (``flexspec.dataflow.LayerModel(stored_kernel_bits=...)``) carry a per-group stored format."""
    groups = np.asarray(groups, dtype=np.int64)
    bits = np.asarray(group_bits, dtype=np.int64).ravel()
    if groups.ndim != 2 or groups.shape[0] != bits.size:
        raise UsageError(f"groups must be [G, P] with G = {bits.size} groups, got shape {groups.shape}")
    live = groups >= 0
    count = live.sum(axis=1)
    if np.any((count == 0) & (bits != 0)):
        raise UsageError("a group without kernels cannot hold stored bits")
    share = np.where(count > 0, bits // np.maximum(count, 1), 0)
    first = np.argmax(live, axis=1)
    out = np.zeros(int(num_kernels), dtype=np.int64)
    np.add.at(out, groups[live], np.repeat(share, count))
    has = count > 0
    np.add.at(out, groups[has, first[has]], bits[has] - share[has] * count[has])
    return out
