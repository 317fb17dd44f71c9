"""numba kernels of the fast OaA paths: the memory-bound passes of the torch layer
(:mod:`flexspec.spectral.torch_ops`) and of :class:`flexspec.spectral.sparse.SparseOaA`, and the
latter's sparse per-frequency product.

Each kernel is one serial pass that reads its input once and writes every element of its output
(no zero fill first, no slice-by-slice accumulation, no parallel region): on the shared 2-core
machine a 2-thread elementwise op waits for its second thread whenever that thread is
descheduled, so one serial pass beats the ~10 short parallel torch ops it replaces (measured,
BENCHMARKS.md "Spectral OaA vs conv2d").  Layouts (channels innermost everywhere):

* tiles ``[h, h, B, Ty, Tx, C]``: pixel (py, px) of tile (ty, tx) of image b, zero past the input;
* blocks ``[N, N, B, Ty, Tx, C]``: the N x N inverse transform of every tile;
* images ``[B, H, W, C]`` (a logical NCHW tensor permuted; any strides).

The ``*_planar`` variants serve NCHW-contiguous images, :class:`~flexspec.spectral.sparse.SparseOaA`'s
``*_channel_major`` ones tiles and blocks ``[.., C, B, Ty, Tx]`` (tiles innermost, its product's lanes).
"""

from __future__ import annotations

from numba import njit


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
def tiles_forward_channel_major(x, tile, out):
    """Cut ``x`` [B, C, H, W] into ``out`` [tile, tile, C, B, Ty, Tx], zero where a tile passes the edge."""
    b_count, c_count, height, width = x.shape
    ty_count, tx_count = out.shape[4], out.shape[5]
    for py in range(tile):
        for px in range(tile):
            for c in range(c_count):
                for b in range(b_count):
                    for ty in range(ty_count):
                        y = ty * tile + py
                        dst = out[py, px, c, b, ty]
                        if y >= height:
                            dst[:] = 0
                            continue
                        src = x[b, c, y]
                        for tx in range(tx_count):
                            xx = tx * tile + px
                            dst[tx] = src[xx] if xx < width else 0


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
def overlap_add_channel_major(blocks, tile, start_h, start_w, bias, out):
    """:func:`overlap_add_forward` for ``blocks`` [N, N, C, B, Ty, Tx] into ``out`` [B, C, OH, OW]."""
    n = blocks.shape[0]
    c_count, b_count, ty_count, tx_count = blocks.shape[2], blocks.shape[3], blocks.shape[4], blocks.shape[5]
    oh, ow = out.shape[2], out.shape[3]
    parts = (n + tile - 1) // tile
    for b in range(b_count):
        for c in range(c_count):
            for oy in range(oh):
                yy = oy + start_h
                dst = out[b, c, oy]
                dst[:] = 0
                for a in range(parts):
                    ty, qy, row_ok = _piece(yy, a, tile, ty_count, n)
                    if not row_ok:
                        continue
                    for ox in range(ow):
                        for d in range(parts):
                            tx, qx, col_ok = _piece(ox + start_w, d, tile, tx_count, n)
                            if col_ok:
                                dst[ox] += blocks[qy, qx, c, b, ty, tx]
                for ox in range(ow):
                    dst[ox] += bias[c]


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


@njit(cache=True, nogil=True, fastmath=True)
def sparse_product(xr, xi, indptr, indices, vr, vi, yr, yi):
    """Per-frequency sparse complex product in real planes: ``y[f, j, :] = sum_i w[f, j, i] * x[f, i, :]``.

    ``x`` [F, Cin, M] and ``y`` [F, Cout, M] (real and imaginary planes, M = tiles innermost);
    the kept kernel values are CSR by row ``f * Cout + j``: input channels ``indices[p]`` and values
    ``vr[p] + 1j * vi[p]`` for ``p`` in ``indptr[row]:indptr[row + 1]``.  Each output row is
    accumulated in place while it is in cache; only kept values are read (one multiply-accumulate
    of M lanes per kept value)."""
    f_count, c_out, m = yr.shape
    for f in range(f_count):
        for j in range(c_out):
            row = f * c_out + j
            acc_r = yr[f, j]
            acc_i = yi[f, j]
            acc_r[:] = 0
            acc_i[:] = 0
            for p in range(indptr[row], indptr[row + 1]):
                wr = vr[p]
                wi = vi[p]
                ar = xr[f, indices[p]]
                ai = xi[f, indices[p]]
                for q in range(m):
                    acc_r[q] += wr * ar[q] - wi * ai[q]
                    acc_i[q] += wr * ai[q] + wi * ar[q]
