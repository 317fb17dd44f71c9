"""Which IFFT engine transforms which output: the shared pool's static IFFT assignment, and the
one formula for the IFFT time it implies (used by the simulator, the PE-array rule, the design
search's estimate, the dataflow budget, the pool's cycle model and the generated cluster's ROMs).

The shared pool (``array_split = "tiles+groups"``, :mod:`flexspec.rtl.cluster`) splits a kernel
block's A arrays into a_t columns (tiles) x a_g rows (output-channel slices,
:func:`flexspec.accel.grouping.cout_slices`).  Every tile of a slice must go through **one** IFFT
engine, because the overlap-add carries of an output channel pass from tile to tile inside that
engine's output tail (:class:`flexspec.rtl.output_tail.OutputTail`).  So array row (slice) g goes
to IFFT ``g mod E`` (:func:`ifft_of_slice`): IFFT e transforms every tile of the slices
``{g : g mod E = e}`` and its tail holds their carries.  A split with a_g < E leaves E - a_g
engines idle for that kernel block; the busiest engine holds ceil(a_g / E) slices.  The time of a
block of ``tiles`` tiles x ``channels`` output channels is that engine's:
``tiles x N x busiest_ifft_channels(channels, a_g, E)`` cycles (:func:`ifft_cycles`), about
``a_g / ceil(a_g / E)`` engines' worth of the E (:func:`ifft_engines_serving`).

``array_split = "tiles"`` (a_g = 1, every array runs the whole layer on its own tiles; the as-built
design has one IFFT per array) deals the items by tile: E engines' worth, as before.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import UsageError
from .grouping import cout_slices, slices_fill


def ifft_of_slice(row: int, ifft_engines: int) -> int:
    """The IFFT engine of array row (output-channel slice) ``row``: ``row mod E``."""
    return int(row) % int(ifft_engines)


def slices_of_ifft(e: int, a_g: int, ifft_engines: int) -> list[int]:
    """The array rows (slices) of a_g whose tiles IFFT ``e`` transforms, in order."""
    return [g for g in range(int(a_g)) if ifft_of_slice(g, ifft_engines) == int(e)]


@lru_cache(maxsize=4096)
def busiest_ifft_channels(channels: int, a_g: int, ifft_engines: int) -> int:
    """Output channels a tile of the busiest IFFT engine carries when ``channels`` output channels
    are cut into a_g slices (:func:`~flexspec.accel.grouping.cout_slices`) and slice g goes to IFFT
    g mod E (:func:`ifft_of_slice`)."""
    channels, a_g, e_count = int(channels), int(a_g), int(ifft_engines)
    if a_g < 1 or e_count < 1:
        raise UsageError(f"IFFT assignment: need a_g >= 1 and E >= 1, got a_g={a_g}, E={e_count}")
    per = [0] * min(a_g, e_count)
    for g, (_, n) in enumerate(cout_slices(channels, a_g)):
        per[ifft_of_slice(g, e_count)] += n
    return max(per)


def ifft_cycles(config, channels, tiles, a_g: int = 1) -> float:
    """IFFT cycles of ``tiles`` tiles x ``channels`` output channels of one kernel block run at
    split a_g on design ``config`` (an :class:`~flexspec.accel.arch.AcceleratorConfig`): the busiest
    engine's ``tiles x N x busiest_ifft_channels`` ("tiles+groups"), or the items dealt by tile
    over the E engines (``array_split = "tiles"``).  ``channels`` and ``tiles`` may be numbers or
    numpy arrays (elementwise, one a_g)."""
    n = config.fft_size
    if config.array_split == "tiles":
        return tiles * channels * n / config.ifft_engines
    if hasattr(channels, "__len__"):
        busiest = np.array([busiest_ifft_channels(int(c), a_g, config.ifft_engines)
                            for c in np.ravel(channels)]).reshape(np.shape(channels))
        return tiles * n * busiest
    return tiles * n * busiest_ifft_channels(int(channels), a_g, config.ifft_engines)


def ifft_engines_serving(config, a_g: int) -> float:
    """The IFFT engines' worth that serve a kernel block at split a_g when its slices are even:
    ``a_g / ceil(a_g / E)`` (a_g when a_g <= E); E with ``array_split = "tiles"``."""
    if config.array_split == "tiles":
        return float(config.ifft_engines)
    return int(a_g) / -(-int(a_g) // int(config.ifft_engines))


def layer_ifft_cycles(config, channels: int, tiles: int, cout_block: int, splits) -> float:
    """IFFT cycles of a layer of ``channels`` output channels x ``tiles`` tiles walked in cout blocks
    of ``cout_block``, each block at the split of ``splits`` (a_g values) its IFFTs serve best (a
    lower bound on the simulator's, which picks a block's split by its compute and IFFT together:
    ``layer_cycles``); splits that leave a slice empty are skipped (none left: infinite)."""
    blk = min(int(cout_block), int(channels))
    full, rest = divmod(int(channels), blk)

    def least(c: int) -> float:
        return min((ifft_cycles(config, c, tiles, d) for d in splits if d == 1 or slices_fill(c, d)), default=np.inf)

    return full * least(blk) + (least(rest) if rest else 0.0)
