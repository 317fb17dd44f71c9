"""numba kernels of the fast OaA paths: the memory-bound passes of the torch layer
(:mod:`flexspec.spectral.torch_ops`) and of :class:`flexspec.spectral.sparse.SparseOaA`, and the
latter's sparse per-frequency product.

Each kernel is one serial pass that reads its input once and writes every element of its output
(no zero fill first, no slice-by-slice accumulation, no parallel region): on the shared 2-core
machine a 2-thread elementwise op waits for its second thread whenever that thread is
descheduled, so one serial pass beats the ~10 short parallel torch ops it replaces (measured,
BENCHMARKS.md "Spectral OaA vs conv2d").  The compute-bound sparse product releases the GIL
so that :class:`~flexspec.spectral.sparse.SparseOaA` can run frequency ranges on a few threads
that sleep when idle (no spinning OpenMP pool next to torch's and OpenBLAS's).  Layouts (channels innermost everywhere):

* tiles ``[h, h, B, Ty, Tx, C]``: pixel (py, px) of tile (ty, tx) of image b, zero past the input;
* blocks ``[N, N, B, Ty, Tx, C]``: the N x N inverse transform of every tile;
* images ``[B, H, W, C]`` (a logical NCHW tensor permuted; any strides).

The ``*_planar`` variants serve NCHW-contiguous images.  :class:`~flexspec.spectral.sparse.SparseOaA`
uses the ``*_lanes`` kernels and layout: tiles, spectra, products and blocks ``[.., chunks, C, LANES]``,
the tiles of the batch (``l = (b * Ty + ty) * Tx + tx``) cut into chunks of :data:`LANES`, zero past
the last tile, so that its sparse product multiplies one kept value into one full vector register.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

#: Lanes of one chunk of tiles in the sparse product: one 512-bit register of float32 (two of float64).
LANES = 16
#: Kept values per step of the sparse product; :class:`~flexspec.spectral.sparse.SparseOaA` pads
#: every row of its CSR to a multiple (zero values on input channel 0).
SPARSE_UNROLL = 8
_PARTIAL_SUMS = 4  # independent accumulator chains per plane within a step (hides the FMA latency)


@njit(cache=True, nogil=True)
def tiles_forward(x, tile, out):
    """Cut ``x`` [B, H, W, C] into ``out`` [tile, tile, B, Ty, Tx, C], zero where a tile passes the edge."""
    b_count, height, width, c_count = x.shape
    ty_count, tx_count = out.shape[3], out.shape[4]
    for py in range(tile):
        for px in range(tile):
            for b in range(b_count):
                for ty in range(ty_count):
                    y = ty * tile + py
                    for tx in range(tx_count):
                        xx = tx * tile + px
                        dst = out[py, px, b, ty, tx]
                        if y < height and xx < width:
                            src = x[b, y, xx]
                            for c in range(c_count):
                                dst[c] = src[c]
                        else:
                            dst[:] = 0


@njit(cache=True, nogil=True)
def tiles_forward_planar(x, tile, out):
    """:func:`tiles_forward` for ``x`` [B, C, H, W] with rows contiguous: reads along rows and writes
    blocks of channels, so that both sides stream (a channel-innermost loop would stride by H*W)."""
    b_count, c_count, height, width = x.shape
    ty_count, tx_count = out.shape[3], out.shape[4]
    for py in range(tile):
        for px in range(tile):
            for b in range(b_count):
                for ty in range(ty_count):
                    for tx in range(tx_count):
                        if ty * tile + py >= height or tx * tile + px >= width:
                            out[py, px, b, ty, tx, :] = 0
    block = 16
    for b in range(b_count):
        for c0 in range(0, c_count, block):
            c1 = min(c_count, c0 + block)
            for y in range(height):
                ty, py = divmod(y, tile)
                for xx in range(width):
                    tx, px = divmod(xx, tile)
                    dst = out[py, px, b, ty, tx]
                    for c in range(c0, c1):
                        dst[c] = x[b, c, y, xx]


@njit(cache=True, nogil=True)
def tiles_adjoint(grad, tile, out):
    """Adjoint of :func:`tiles_forward`: ``out`` [B, H, W, C] = the tile entry each pixel went to."""
    b_count, height, width, c_count = out.shape
    for b in range(b_count):
        for y in range(height):
            ty, py = divmod(y, tile)
            for xx in range(width):
                tx, px = divmod(xx, tile)
                src = grad[py, px, b, ty, tx]
                dst = out[b, y, xx]
                for c in range(c_count):
                    dst[c] = src[c]


@njit(cache=True, nogil=True, inline="always")
def _piece(pos, part, tile, count, n):
    """Which block adds to canvas position ``pos`` as its ``part``-th tile-sized strip (0: the block
    of that tile, 1: the one before, ...): (block index, position inside the block, whether it exists)."""
    t = pos // tile - part
    q = pos - t * tile
    return t, q, 0 <= t < count and q < n


@njit(cache=True, nogil=True)
def overlap_add_forward(blocks, tile, start_h, start_w, bias, out):
    """``out`` [B, OH, OW, C] = the window at (start_h, start_w) of the overlap-add of ``blocks``
    [N, N, B, Ty, Tx, C] (block (ty, tx) placed at pixel (ty * tile, tx * tile)), plus ``bias`` [C].

    Pieces are added in the order (row part, column part) = (0, 0), (0, 1), ..., then the bias."""
    n = blocks.shape[0]
    b_count, ty_count, tx_count, c_count = blocks.shape[2], blocks.shape[3], blocks.shape[4], blocks.shape[5]
    oh, ow = out.shape[1], out.shape[2]
    parts = (n + tile - 1) // tile
    for b in range(b_count):
        for oy in range(oh):
            yy = oy + start_h
            for ox in range(ow):
                xx = ox + start_w
                dst = out[b, oy, ox]
                dst[:] = 0
                for a in range(parts):
                    ty, qy, row_ok = _piece(yy, a, tile, ty_count, n)
                    if not row_ok:
                        continue
                    for d in range(parts):
                        tx, qx, col_ok = _piece(xx, d, tile, tx_count, n)
                        if not col_ok:
                            continue
                        src = blocks[qy, qx, b, ty, tx]
                        for c in range(c_count):
                            dst[c] += src[c]
                for c in range(c_count):
                    dst[c] += bias[c]


@njit(cache=True, nogil=True)
def overlap_add_adjoint(grad, tile, start_h, start_w, out):
    """Adjoint of :func:`overlap_add_forward` (without the bias): ``out`` [N, N, B, Ty, Tx, C], each
    block entry the gradient at the output pixel it was added to (zero outside the window)."""
    n = out.shape[0]
    b_count, ty_count, tx_count, c_count = out.shape[2], out.shape[3], out.shape[4], out.shape[5]
    oh, ow = grad.shape[1], grad.shape[2]
    for qy in range(n):
        for qx in range(n):
            for b in range(b_count):
                for ty in range(ty_count):
                    oy = ty * tile + qy - start_h
                    for tx in range(tx_count):
                        ox = tx * tile + qx - start_w
                        dst = out[qy, qx, b, ty, tx]
                        if 0 <= oy < oh and 0 <= ox < ow:
                            src = grad[b, oy, ox]
                            for c in range(c_count):
                                dst[c] = src[c]
                        else:
                            dst[:] = 0


@njit(cache=True, nogil=True)
def _pixel_offsets(qy, qx, tile, shape, strides, ty_count, tx_count, start_h, start_w, idx):
    """``idx[l]`` = the offset, in the flat storage of an image batch of ``shape`` (B, C, H, W) with element
    ``strides`` (any order: NCHW or channels-last), channel 0, of the pixel that entry (qy, qx) of tile
    l = (b * Ty + ty) * Tx + tx lands on, (ty * tile + qy - start_h, tx * tile + qx - start_w); -1 where
    that is outside the H x W image."""
    b_count, height, width = shape[0], shape[2], shape[3]
    lane = 0
    for b in range(b_count):
        for ty in range(ty_count):
            y = ty * tile + qy - start_h
            for tx in range(tx_count):
                xx = tx * tile + qx - start_w
                inside = 0 <= y < height and 0 <= xx < width
                idx[lane] = b * strides[0] + y * strides[2] + xx * strides[3] if inside else -1
                lane += 1


@njit(cache=True, nogil=True)
def _tiles_cmajor(flat, shape, strides, tile, ty_count, tx_count, tiles, adjoint):
    """Images <-> channel-major tiles, one contiguous run of L lanes per (py, px, c), by offsets:
    :func:`tiles_forward_cmajor` (``adjoint`` False) or :func:`tiles_adjoint_cmajor` (True)."""
    idx = np.empty(tiles.shape[3], np.int64)
    for py in range(tile):
        for px in range(tile):
            _pixel_offsets(py, px, tile, shape, strides, ty_count, tx_count, 0, 0, idx)
            for c in range(shape[1]):
                base = c * strides[1]
                run = tiles[py, px, c]
                if adjoint:
                    for lane in range(idx.shape[0]):
                        if idx[lane] >= 0:
                            flat[base + idx[lane]] = run[lane]
                else:
                    for lane in range(idx.shape[0]):
                        run[lane] = flat[base + idx[lane]] if idx[lane] >= 0 else 0


@njit(cache=True, nogil=True)
def tiles_forward_cmajor(flat, shape, strides, tile, ty_count, tx_count, out):
    """Cut the images ``flat`` (flat storage of a [B, C, H, W] batch with element ``strides``) into
    ``out`` [tile, tile, C, L], channel-major: pixel (py, px) of tile l = (b * Ty + ty) * Tx + tx of
    channel c at ``out[py, px, c, l]``; zero where a tile passes the edge."""
    _tiles_cmajor(flat, shape, strides, tile, ty_count, tx_count, out, False)


@njit(cache=True, nogil=True)
def tiles_adjoint_cmajor(grad, tile, ty_count, tx_count, flat, shape, strides):
    """Adjoint of :func:`tiles_forward_cmajor`: the images ``flat`` (layout as there) = the tile entry
    each pixel went to (the tiles cover every pixel once)."""
    _tiles_cmajor(flat, shape, strides, tile, ty_count, tx_count, grad, True)


@njit(cache=True, nogil=True)
def overlap_add_cmajor(blocks, tile, ty_count, tx_count, start_h, start_w, bias, flat, shape, strides):
    """The images ``flat`` (flat storage of a [B, C, OH, OW] batch with element ``strides``, every element
    written) = the window at (start_h, start_w) of the overlap-add of the channel-major ``blocks``
    [N, N, C, L] (block of tile l = (b * Ty + ty) * Tx + tx placed at pixel (ty * tile, tx * tile)),
    plus ``bias`` [C].  Pieces are added in the order (qy, qx) of the block."""
    n = blocks.shape[0]
    b_count, c_count, oh, ow = shape
    for b in range(b_count):
        for y in range(oh):
            for xx in range(ow):
                at = b * strides[0] + y * strides[2] + xx * strides[3]
                for c in range(c_count):
                    flat[at + c * strides[1]] = bias[c]
    idx = np.empty(blocks.shape[3], np.int64)
    for qy in range(n):
        for qx in range(n):
            _pixel_offsets(qy, qx, tile, shape, strides, ty_count, tx_count, start_h, start_w, idx)
            for c in range(c_count):
                base = c * strides[1]
                src = blocks[qy, qx, c]
                for lane in range(idx.shape[0]):
                    i = idx[lane]
                    if i >= 0:
                        flat[base + i] += src[lane]


@njit(cache=True, nogil=True)
def overlap_add_adjoint_cmajor(flat, shape, strides, tile, ty_count, tx_count, start_h, start_w, out):
    """Adjoint of :func:`overlap_add_cmajor` (without the bias): ``out`` [N, N, C, L], each block entry
    the gradient at the output pixel it was added to (zero outside the window); the gradient ``flat``
    laid out as there."""
    n = out.shape[0]
    idx = np.empty(out.shape[3], np.int64)
    for qy in range(n):
        for qx in range(n):
            _pixel_offsets(qy, qx, tile, shape, strides, ty_count, tx_count, start_h, start_w, idx)
            for c in range(shape[1]):
                base = c * strides[1]
                dst = out[qy, qx, c]
                for lane in range(idx.shape[0]):
                    i = idx[lane]
                    dst[lane] = flat[base + i] if i >= 0 else 0


@njit(cache=True, nogil=True)
def tiles_forward_lanes(x, tile, out, c_start, c_stop):
    """Cut channels ``c_start:c_stop`` of ``x`` [B, C, H, W] into ``out`` [tile, tile, chunks, C, LANES]:
    pixel (py, px) of tile l = (b * Ty + ty) * Tx + tx at lane ``l % LANES`` of chunk ``l // LANES``;
    zero where a tile passes the edge and in the lanes past the last tile.  Reads rows, writes runs
    of lanes."""
    b_count, height, width = x.shape[0], x.shape[2], x.shape[3]
    ty_count, tx_count = -(-height // tile), -(-width // tile)
    for py in range(tile):
        for px in range(tile):
            for chunk in range(out.shape[2]):
                out[py, px, chunk, c_start:c_stop] = 0
    for b in range(b_count):
        for c in range(c_start, c_stop):
            for y in range(height):
                ty, py = divmod(y, tile)
                row = x[b, c, y]
                first = (b * ty_count + ty) * tx_count
                for px in range(tile):
                    for tx in range(tx_count):
                        xx = tx * tile + px
                        if xx < width:
                            lane = first + tx
                            out[py, px, lane // LANES, c, lane % LANES] = row[xx]


@njit(cache=True, nogil=True)
def overlap_add_lanes(blocks, tile, ty_count, tx_count, start_h, start_w, bias, out, c_start, c_stop):
    """``out`` [B, C, OH, OW] = the window at (start_h, start_w) of the overlap-add of ``blocks``
    [N, N, chunks, C, LANES] (block of tile l placed at pixel (ty * tile, tx * tile), the lanes of
    :func:`tiles_forward_lanes`), plus ``bias`` [C], for channels ``c_start:c_stop``.  One output
    plane at a time (it stays in cache)."""
    n = blocks.shape[0]
    b_count, oh, ow = out.shape[0], out.shape[2], out.shape[3]
    for b in range(b_count):
        for c in range(c_start, c_stop):
            plane = out[b, c]
            plane[:] = bias[c]
            for qy in range(n):
                for ty in range(ty_count):
                    oy = ty * tile + qy - start_h
                    if oy < 0 or oy >= oh:
                        continue
                    first = (b * ty_count + ty) * tx_count
                    for qx in range(n):
                        src = blocks[qy, qx]
                        for tx in range(tx_count):
                            ox = tx * tile + qx - start_w
                            if 0 <= ox < ow:
                                lane = first + tx
                                plane[oy, ox] += src[lane // LANES, c, lane % LANES]


def _vector_at(builder, vec, base, offset):
    """LLVM: pointer to the LANES-wide vector at element ``offset`` of the array data ``base``."""
    return builder.bitcast(builder.gep(base, [offset], inbounds=True), vec.as_pointer())


def _splat(builder, vec, scalar):
    """LLVM: ``scalar`` broadcast to every lane of a ``vec``."""
    one = builder.insert_element(ir.Constant(vec, ir.Undefined), scalar, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, ir.Constant(vec, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES))


@intrinsic
def _complex_mac_step(typingctx, y, x, y_at, y_plane, x_at, x_plane, channels, values, p):
    """One step of the sparse product, written as LLVM vector code (numba's own vectoriser adds
    alias checks and a serial FMA chain per kept value, measured 3-5x slower):
    ``acc += sum_{k < SPARSE_UNROLL} w_k * x_row(channels[p + k])`` on one chunk of LANES lanes,
    real plane at ``y[y_at:]``, imaginary at ``y[y_at + y_plane:]``; ``x_row(i)`` at
    ``x[x_at + i * LANES:]`` (imaginary ``+ x_plane``); ``w_k = values[2(p+k)] + 1j values[2(p+k)+1]``.
    The kept values go to :data:`_PARTIAL_SUMS` independent chains per plane, summed at the end."""
    i64 = ir.IntType(64)

    def codegen(context, builder, sig, args):
        y_arg, x_arg, y_at_v, y_plane_v, x_at_v, x_plane_v, ch_arg, w_arg, p_v = args
        y_ty, x_ty, ch_ty, w_ty = sig.args[0], sig.args[1], sig.args[6], sig.args[7]
        vec = ir.VectorType(context.get_value_type(y_ty.dtype), LANES)
        ya = context.make_array(y_ty)(context, builder, y_arg)
        xa = context.make_array(x_ty)(context, builder, x_arg)
        cha = context.make_array(ch_ty)(context, builder, ch_arg)
        wa = context.make_array(w_ty)(context, builder, w_arg)
        fl = ("contract",)

        def const(v):
            return ir.Constant(i64, v)

        def vector_at(base, offset):
            return _vector_at(builder, vec, base, offset)

        def splat(scalar):
            return _splat(builder, vec, scalar)

        rows, weights = [], []
        for k in range(SPARSE_UNROLL):
            pk = builder.add(p_v, const(k))
            channel = builder.zext(builder.load(builder.gep(cha.data, [pk], inbounds=True)), i64)
            rows.append(builder.add(x_at_v, builder.mul(channel, const(LANES))))
            at = builder.mul(pk, const(2))
            weights.append((splat(builder.load(builder.gep(wa.data, [at], inbounds=True))),
                            splat(builder.load(builder.gep(wa.data, [builder.add(at, const(1))], inbounds=True)))))
        y_re = y_at_v
        y_im = builder.add(y_at_v, y_plane_v)
        sums_re = [builder.load(vector_at(ya.data, y_re), align=4)] + [None] * (_PARTIAL_SUMS - 1)
        sums_im = [builder.load(vector_at(ya.data, y_im), align=4)] + [None] * (_PARTIAL_SUMS - 1)
        for k in range(SPARSE_UNROLL):
            xr = builder.load(vector_at(xa.data, rows[k]), align=4)
            xi = builder.load(vector_at(xa.data, builder.add(rows[k], x_plane_v)), align=4)
            wr, wi = weights[k]
            g = k % _PARTIAL_SUMS
            t_re, t_im = builder.fmul(wr, xr, flags=fl), builder.fmul(wr, xi, flags=fl)
            if sums_re[g] is not None:
                t_re, t_im = builder.fadd(sums_re[g], t_re, flags=fl), builder.fadd(sums_im[g], t_im, flags=fl)
            sums_re[g] = builder.fsub(t_re, builder.fmul(wi, xi, flags=fl), flags=fl)
            sums_im[g] = builder.fadd(t_im, builder.fmul(wi, xr, flags=fl), flags=fl)
        for sums, at in ((sums_re, y_re), (sums_im, y_im)):
            sums = [s for s in sums if s is not None]
            while len(sums) > 1:
                sums = [builder.fadd(sums[a], sums[a + 1], flags=fl) if a + 1 < len(sums) else sums[a]
                        for a in range(0, len(sums), 2)]
            builder.store(sums[0], vector_at(ya.data, at), align=4)
        return context.get_dummy_value()

    sig = types.void(y, x, types.intp, types.intp, types.intp, types.intp, channels, values, types.intp)
    return sig, codegen


@njit(cache=True, nogil=True, fastmath=True, boundscheck=False)
def sparse_product_lanes(x, indptr, channels, values, y, f_start, f_stop):
    """Per-frequency sparse complex product on chunks of tiles, for frequencies ``f_start:f_stop``:
    ``y[:, f, c, j, :] = sum_i w[f, j, i] * x[:, f, c, i, :]`` (planes 0/1: real/imaginary).

    ``x`` [2, F, chunks, Cin, LANES], ``y`` [2, F, chunks, Cout, LANES], both C-contiguous in the
    same real dtype as ``values`` [nnz, 2] (real, imaginary).  The kept values are CSR by row
    ``f * Cout + j`` (``channels``: unsigned input channels), each row padded to a multiple of
    :data:`SPARSE_UNROLL` (padding: zero values).  For each frequency, one chunk of tiles
    (Cin x LANES per plane, in L1/L2) meets every row of kept values in turn.  Releases the GIL:
    :class:`~flexspec.spectral.sparse.SparseOaA` runs disjoint frequency ranges on its threads."""
    f_count, chunks, c_in = x.shape[1], x.shape[2], x.shape[3]
    c_out = y.shape[3]
    xf = x.reshape(-1)
    yf = y.reshape(-1)
    wf = values.reshape(-1)
    x_plane = f_count * chunks * c_in * LANES
    y_plane = f_count * chunks * c_out * LANES
    for f in range(f_start, f_stop):
        for c in range(chunks):
            x_at = (f * chunks + c) * c_in * LANES
            for j in range(c_out):
                row = f * c_out + j
                y_at = ((f * chunks + c) * c_out + j) * LANES
                for q in range(LANES):
                    yf[y_at + q] = 0.0
                    yf[y_plane + y_at + q] = 0.0
                for p in range(indptr[row], indptr[row + 1], SPARSE_UNROLL):
                    _complex_mac_step(yf, xf, y_at, y_plane, x_at, x_plane, channels, wf, p)


_TRANSFORM_BLOCK = 1024  # columns per block of the transforms: one row block (4 KiB of float32) stays in L1


def _gemm_tile(row_tile: int, k_tile: int):
    """An intrinsic ``tile(out, a, b, r, k, q, cols)``: for the ``row_tile`` rows from ``r`` and the
    ``k_tile`` columns of ``a`` from ``k``, ``out[row, q:q+LANES] += a[row, k'] * b[k', q:q+LANES]``
    as LLVM vector code (``a``, ``b``, ``out`` flat C arrays of row lengths K, ``cols``, ``cols``).
    numba's vectoriser gives up on the register-tiled loop (more alias checks than it allows)."""

    @intrinsic
    def tile(typingctx, out, a, b, r, k, q, k_count, cols):
        def codegen(context, builder, sig, args):
            out_v, a_v, b_v, r_v, k_v, q_v, kc_v, cols_v = args
            vec = ir.VectorType(context.get_value_type(sig.args[0].dtype), LANES)
            oa = context.make_array(sig.args[0])(context, builder, out_v)
            aa = context.make_array(sig.args[1])(context, builder, a_v)
            ba = context.make_array(sig.args[2])(context, builder, b_v)
            i64 = ir.IntType(64)
            fl = ("contract",)

            def at(base, offset):
                return _vector_at(builder, vec, base, offset)

            srcs = [builder.load(at(ba.data, builder.add(builder.mul(builder.add(k_v, ir.Constant(i64, i)), cols_v), q_v)),
                                 align=4) for i in range(k_tile)]
            for rr in range(row_tile):
                row = builder.add(r_v, ir.Constant(i64, rr))
                dst = builder.add(builder.mul(row, cols_v), q_v)
                acc = builder.load(at(oa.data, dst), align=4)
                for i in range(k_tile):
                    w_at = builder.add(builder.mul(row, kc_v), builder.add(k_v, ir.Constant(i64, i)))
                    w = _splat(builder, vec, builder.load(builder.gep(aa.data, [w_at], inbounds=True)))
                    acc = builder.fadd(acc, builder.fmul(w, srcs[i], flags=fl), flags=fl)
                builder.store(acc, at(oa.data, dst), align=4)
            return context.get_dummy_value()

        return types.void(out, a, b, types.intp, types.intp, types.intp, types.intp, types.intp), codegen

    return tile


_tile_4x4, _tile_1x4, _tile_4x1, _tile_1x1 = (_gemm_tile(r, k) for r, k in ((4, 4), (1, 4), (4, 1), (1, 1)))


@njit(cache=True, nogil=True, fastmath=True)
def rows_times(a, row_start, row_stop, b, out, col_start, col_stop):
    """``out[r, col_start:col_stop] = a[r] @ b[:, col_start:col_stop]`` for ``r`` in
    ``row_start:row_stop`` (``a`` [R, K], ``b`` [K, cols], ``out`` [R, cols], C-contiguous; ``cols``,
    ``col_start`` and ``col_stop`` multiples of :data:`LANES`): the small DFT GEMMs of the sparse
    path, in register tiles of 4 rows x 4 columns of ``a`` x LANES columns of ``b``."""
    k_count, cols = a.shape[1], b.shape[1]
    af, bf, of = a.reshape(-1), b.reshape(-1), out.reshape(-1)
    for c0 in range(col_start, col_stop, _TRANSFORM_BLOCK):
        c1 = min(col_stop, c0 + _TRANSFORM_BLOCK)
        r = row_start
        while r < row_stop:
            rows = min(4, row_stop - r)
            for i in range(rows):
                out[r + i, c0:c1] = 0
            for k in range(0, k_count - 3, 4):
                for q in range(c0, c1, LANES):
                    if rows == 4:
                        _tile_4x4(of, af, bf, r, k, q, k_count, cols)
                    else:
                        for i in range(rows):
                            _tile_1x4(of, af, bf, r + i, k, q, k_count, cols)
            for k in range(k_count - k_count % 4, k_count):
                for q in range(c0, c1, LANES):
                    if rows == 4:
                        _tile_4x1(of, af, bf, r, k, q, k_count, cols)
                    else:
                        for i in range(rows):
                            _tile_1x1(of, af, bf, r + i, k, q, k_count, cols)
            r += rows


@njit(cache=True, nogil=True)
def sparse_spectra_and_product(tiles, d, xs, indptr, channels, values, y, f_start, f_stop):
    """Phase 1 of :class:`~flexspec.spectral.sparse.SparseOaA` for frequencies ``f_start:f_stop``:
    their tile spectra ``xs`` [2, F, chunks, Cin, LANES] (rows f and F + f of ``d @ tiles``, ``d``
    [2F, h*h], ``tiles`` [h, h, chunks, Cin, LANES]) and their sparse product into ``y``."""
    f_count = xs.shape[1]
    tiles2 = tiles.reshape(d.shape[1], -1)
    xs2 = xs.reshape(2 * f_count, -1)
    cols = tiles2.shape[1]
    rows_times(d, f_start, f_stop, tiles2, xs2, 0, cols)
    rows_times(d, f_count + f_start, f_count + f_stop, tiles2, xs2, 0, cols)
    sparse_product_lanes(xs, indptr, channels, values, y, f_start, f_stop)


@njit(cache=True, nogil=True)
def sparse_blocks_and_overlap_add(g, y, blocks, tile, ty_count, tx_count, start_h, start_w, bias, out,
                                  c_start, c_stop):
    """Phase 2 of :class:`~flexspec.spectral.sparse.SparseOaA` for output channels ``c_start:c_stop``:
    their N x N blocks ``blocks`` [N, N, chunks, Cout, LANES] = ``g`` [N*N, 2F] @ ``y``
    [2, F, chunks, Cout, LANES], then overlap-add, crop and bias into ``out`` [B, Cout, OH, OW]."""
    chunks, c_out = y.shape[2], y.shape[3]
    y2 = y.reshape(g.shape[1], -1)
    blocks2 = blocks.reshape(g.shape[0], -1)
    for chunk in range(chunks):
        base = chunk * c_out * LANES
        rows_times(g, 0, g.shape[0], y2, blocks2, base + c_start * LANES, base + c_stop * LANES)
    overlap_add_lanes(blocks, tile, ty_count, tx_count, start_h, start_w, bias, out, c_start, c_stop)
