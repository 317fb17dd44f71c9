"""numba kernels of the torch OaA layer's memory-bound passes (:mod:`flexspec.spectral.torch_ops`).

Each kernel is one serial pass that reads its input once and writes every element of its output
(no zero fill first, no slice-by-slice accumulation, no parallel region): on the shared 2-core
machine a 2-thread elementwise op waits for its second thread whenever that thread is
descheduled, so one serial pass beats the ~10 short parallel torch ops it replaces (measured,
BENCHMARKS.md "Spectral OaA vs conv2d").  Layouts (channels innermost everywhere):

* tiles ``[h, h, B, Ty, Tx, C]``: pixel (py, px) of tile (ty, tx) of image b, zero past the input;
* blocks ``[N, N, B, Ty, Tx, C]``: the N x N inverse transform of every tile;
* images ``[B, H, W, C]`` (a logical NCHW tensor permuted; any strides).
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
                    ty = yy // tile - a
                    qy = yy - ty * tile
                    if ty < 0 or ty >= ty_count or qy >= n:
                        continue
                    for d in range(parts):
                        tx = xx // tile - d
                        qx = xx - tx * tile
                        if tx < 0 or tx >= tx_count or qx >= n:
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
