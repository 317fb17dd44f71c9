"""Cycle model of the shared FFT/IFFT pool cluster (``flexspec.rtl.cluster``): A = a_t x a_g arrays,
F FFT engines, E IFFT engines, static distribution (spec: ``flexspec.rtl.cluster_case``).

The cluster copies the one-array engine's flow control per array column, so its events are the
recurrence of :func:`flexspec.accel.layer_events.engine_events` with each resource's own sequence
(edges counted from the first edge after reset; host always offering, outputs always ready):

* FFT f takes the channels of its tiles (t = f mod F) in order: channel j of its sequence enters at
  ``I_j = max(I_{j-1} + N, R_{j-2} + r_fft, W'_{j'-2} + SLOT_FREE_CYCLES)`` (``I_0 = 1``) where
  ``j'`` is the channel's index in its **column's** sequence (the column's two writer slots) and
  ``W'`` the column's last-row edges; ``R_j = max(I_j + N + L1 + 1, R_{j-1} + N/2+1)``;
* column c's writer: channel j' is offered from ``full = R_j + L1 + N/2 + WRITER_FILL_CYCLES`` and
  after ``W'_{j'-1} + 1``; the first channel of the column's k-th tile also waits, for **every**
  array row g of the column (the broadcast bus takes a row only when all are ready), for the credit
  ``C_{c,g}[k - CREDITS] + CREDIT_CYCLES`` and the tile-buffer half
  ``A_{c,g}[k-2] + L_g + TILE_RELEASE_CYCLES``; ``W'_{j'} = S_{j'} + d - 1``;
* array (c, g): :func:`flexspec.accel.engine.issue_and_drain` of its k-th tile, loaded at
  ``W'`` of the tile's last channel + 1, with row g's program ``L_g`` and read-out ``Q_g``;
  complete in its FIFO from ``Z = F + readout + OUTPUT_CYCLES + FIFO_COMPLETE_CYCLES``;
* IFFT e takes its items (tile t, row g) in order (every tile of row g to IFFT ``g mod E``,
  :func:`flexspec.accel.ifft_assign.ifft_of_slice`; engines e >= a_g idle):
  the first channel of an item not before ``Z`` nor before the previous tile of the same FIFO was
  consumed (``C + 1``: the FIFO's head); then ``V_u = max(V_{u-1} + N/2+1, R'_{u-2} + r_ifft)``,
  ``R'_u = max(V_u + N/2+1 + L1 + 1, R'_{u-1} + N)`` over IFFT e's own channel sequence; the item is
  consumed at ``C = V_last + N/2``; row r of channel u leaves at ``R'_u + L1 + r``.

``cycles``: the edge after which ``done`` is high (every IFFT's last row has left).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from ..rtl.fft_contract import release_index, transform_latency_cycles
from ..rtl.program import program_length
from .engine import OUTPUT_CYCLES, TILE_RELEASE_CYCLES, issue_and_drain, readout_requests
from .fixed_point import FFTFormat
from .grouping import cout_slices, schedule_layer_blocks, slices_fill
from .ifft_assign import ifft_of_slice
from .layer_events import (CREDIT_CYCLES, CREDITS, FIFO_COMPLETE_CYCLES, OLA_CYCLES, SLOT_FREE_CYCLES,
                           WRITER_FILL_CYCLES, EngineGeometry, channel_depth)


@dataclass(frozen=True)
class PoolEvents:
    """Edges of the cluster's events: per array (column, row) its accepts ``A`` and drain ends ``F``,
    per IFFT its item consumptions, the busiest resources, and the total."""

    accept: dict  # (c, g) -> int array of A_k
    drain_end: dict  # (c, g) -> int array of F_k
    consumed: dict  # (c, g) -> int array of C_k
    fft_busy_cycles: tuple  # per FFT engine: N x channels (its work)
    ifft_busy_cycles: tuple  # per IFFT engine: N x channels (its work)
    cycles: int
    item_rows: dict | None = None  # (tile, row g) -> edge the item's last channel's block row 0 leaves its IFFT


def pool_events(geom: EngineGeometry, a_t: int, a_g: int, fft_engines: int, ifft_engines: int,
                row_programs, row_channels) -> PoolEvents:
    """The cluster's event edges (module doc).  ``geom``: the whole layer (one kernel block);
    ``row_programs``: program words of each array row; ``row_channels``: output channels of each
    row.  O(tiles x (Cin + Cout)) integer steps."""
    g = geom
    n, half, d, lat = g.fft_size, g.half, g.channel_depth, g.readout_cycles
    L1 = transform_latency_cycles(n)
    r_fft = release_index(FFTFormat(n, 16, 16, 0))
    r_ifft = release_index(FFTFormat(n, 16, 16, 0, inverse=True))
    T, cin = g.tiles, g.in_channels
    q = [readout_requests(int(co), n, g.readout_rows) for co in row_channels]
    L = [int(x) for x in row_programs]
    tiles_c = [len(range(c, T, a_t)) for c in range(a_t)]
    A = {(c, r): np.zeros(tiles_c[c], dtype=np.int64) for c in range(a_t) for r in range(a_g)}
    F = {k: np.zeros_like(v) for k, v in A.items()}
    Cc = {k: np.zeros_like(v) for k, v in A.items()}
    Z = {k: np.zeros_like(v) for k, v in A.items()}
    fft_I = [[] for _ in range(fft_engines)]
    fft_R = [[] for _ in range(fft_engines)]
    col_W = [[] for _ in range(a_t)]
    ifft_V = [[] for _ in range(ifft_engines)]
    ifft_R = [[] for _ in range(ifft_engines)]
    last = 0
    item_rows = {}
    for t in range(T):
        f, c, k = t % fft_engines, t % a_t, t // a_t
        I, R, Wc = fft_I[f], fft_R[f], col_W[c]  # noqa: E741  (I, R, W: the feed, read and write events of layer_events' recurrence)
        for i in range(cin):
            j, jc = len(I), len(Wc)
            feed = I[j - 1] + n if j else 1
            if j >= 2:
                feed = max(feed, R[j - 2] + r_fft)
            if jc >= 2:
                feed = max(feed, Wc[jc - 2] + SLOT_FREE_CYCLES)
            I.append(feed)
            R.append(max(feed + n + L1 + 1, R[j - 1] + half) if j else feed + n + L1 + 1)
            offer = R[j] + L1 + half - 1 + WRITER_FILL_CYCLES
            if jc:
                offer = max(offer, Wc[jc - 1] + 1)
            if i == 0:
                for r in range(a_g):
                    if k >= CREDITS:
                        offer = max(offer, int(Cc[c, r][k - CREDITS]) + CREDIT_CYCLES)
                    if k >= 2:
                        offer = max(offer, int(A[c, r][k - 2]) + L[r] + TILE_RELEASE_CYCLES)
            Wc.append(offer + d - 1)
        for r in range(a_g):
            issue_and_drain(k, Wc[-1] + 1, A[c, r], F[c, r], L[r], q[r])
            Z[c, r][k] = F[c, r][k] + lat + OUTPUT_CYCLES + FIFO_COMPLETE_CYCLES
        for r in range(a_g):
            e = ifft_of_slice(r, ifft_engines)
            V, Rv = ifft_V[e], ifft_R[e]
            for o in range(int(row_channels[r])):
                u = len(V)
                v = 0
                if o == 0:
                    v = int(Z[c, r][k])
                    if k:
                        v = max(v, int(Cc[c, r][k - 1]) + 1)
                if u:
                    v = max(v, V[u - 1] + half)
                if u >= 2:
                    v = max(v, Rv[u - 2] + r_ifft)
                V.append(v)
                Rv.append(max(v + half + L1 + 1, Rv[u - 1] + n) if u else v + half + L1 + 1)
            Cc[c, r][k] = V[-1] + half - 1
            item_rows[t, r] = Rv[-1] + L1
            last = max(last, Rv[-1] + L1 + n - 1)
    return PoolEvents(A, F, Cc, tuple(n * len(x) for x in fft_I), tuple(n * len(x) for x in ifft_V), int(last),
                      item_rows)


def pool_cycles(spec) -> int:
    """Cycles of a :class:`flexspec.rtl.cluster_case.ClusterSpec` from reset to ``done``."""
    sh = spec.shape
    return pool_events(spec.geometry, sh.a_t, sh.a_g, sh.fft_engines, sh.ifft_engines,
                       [p.length for p in spec.row_programs], [ch for _, ch in spec.row_channels]).cycles


def pool_layer_cycles(mask, config, a_g: int, height: int, width: int, kernel_size: int = 3, padding: int = 1,
                      method: str = "optimal", bank_map="auto") -> int:
    """Cycles of one layer (one kernel block: all Cin in the tile buffers, all Cout over the array
    rows) on the cluster ``flexspec.rtl.cluster`` builds for ``config`` split ``a_t = A / a_g`` x
    ``a_g``, from the simulator's own schedule of the row slices (``schedule_layer_blocks(...,
    slices=a_g)``: :func:`flexspec.accel.grouping.cout_slices`); ``config.fft_engines`` must divide a_t."""
    mask = np.asarray(mask, dtype=bool)
    cout, cin, _ = mask.shape
    if config.arrays % a_g:
        raise UsageError(f"pool: a_g={a_g} does not divide the {config.arrays} arrays")
    a_t = config.arrays // a_g
    if a_t % config.fft_engines:
        raise UsageError(f"pool: the {config.fft_engines} FFT engines must divide the {a_t} array columns")
    if not slices_fill(cout, a_g):
        raise UsageError(f"pool: {a_g} array rows leave an empty output-channel slice of {cout} channels")
    sch = schedule_layer_blocks(mask, config, cout, method, bank_map=bank_map, slices=a_g)
    rows = sch.cycles.shape[0]
    programs = [program_length(sch.cycles[g].ravel()) for g in range(rows)]
    channels = [n for _, n in cout_slices(cout, a_g)]
    geom = EngineGeometry(config.fft_size, kernel_size, padding, height, width, cin, cout,
                          channel_depth(sch.schedule.bank_of, config.banks), max(programs), config.pes,
                          config.readout_rows)
    return pool_events(geom, a_t, rows, config.fft_engines, config.ifft_engines, programs, channels).cycles


def pool_tail_cycles(geom: EngineGeometry, a_t: int, a_g: int, fft_engines: int, ifft_engines: int,
                     row_programs, row_channels) -> int:
    """Cycles from reset to ``done`` of the cluster built with its output tails
    (``PoolCluster(tail=True)``: one :class:`flexspec.rtl.output_tail.OutputTail` per IFFT, never
    stalled with the write-back always ready), arguments as :func:`pool_events`: block row r of an
    item's channel leaves the IFFT ``r`` edges after its row 0 (:attr:`PoolEvents.item_rows`) and
    its write-back beat ``OLA_CYCLES`` later (the engine's write-back term, :func:`engine_events`),
    only for rows with output pixels (:meth:`EngineGeometry.emits`); ``done`` after the last beat
    of every tail."""
    g = geom
    ev = pool_events(g, a_t, a_g, fft_engines, ifft_engines, row_programs, row_channels)
    last = 0
    for (t, _), row0 in ev.item_rows.items():
        ty, tx = divmod(t, g.tiles_x)
        rows = [r for r in range(g.fft_size) if g.emits(ty, tx, r)]
        if rows:
            last = max(last, int(row0) + rows[-1] + OLA_CYCLES)
    return last


def pool_output_cycles(spec) -> int:
    """:func:`pool_tail_cycles` of a :class:`flexspec.rtl.cluster_case.ClusterSpec`."""
    sh = spec.shape
    return pool_tail_cycles(spec.geometry, sh.a_t, sh.a_g, sh.fft_engines, sh.ifft_engines,
                            [p.length for p in spec.row_programs], [ch for _, ch in spec.row_channels])
