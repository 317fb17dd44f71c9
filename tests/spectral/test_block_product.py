"""The channel-major "block" product form of the spectral layer and the training plan: its numba passes
against numpy slicing (brute force) and their adjoints by the dot-product identity; where the form is
chosen; the training plan.  The whole layer in every form against torch conv2d autograd is
``test_torch_ops.test_forward_and_all_gradients_equal_conv2d``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from flexspec.spectral import _oaa_kernels as kernels  # noqa: E402
from flexspec.spectral import torch_ops  # noqa: E402
from flexspec.spectral.torch_ops import plan_spectral, to_spectral  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    pass


def _tiles_reference(x, tile):
    """[B, C, H, W] -> [tile, tile, C, B*Ty*Tx] by padding and slicing."""
    b, c, height, width = x.shape
    ty, tx = -(-height // tile), -(-width // tile)
    padded = np.zeros((b, c, ty * tile, tx * tile), x.dtype)
    padded[:, :, :height, :width] = x
    t = padded.reshape(b, c, ty, tile, tx, tile).transpose(3, 5, 1, 0, 2, 4)
    return t.reshape(tile, tile, c, b * ty * tx)


def _overlap_add_reference(blocks, tile, ty, tx, start_h, start_w, bias, out_shape):
    """Place every N x N block at (ty * tile, tx * tile) on a canvas, crop the window, add the bias."""
    n, _, c, lanes = blocks.shape
    b = lanes // (ty * tx)
    canvas = np.zeros((b, c, (ty - 1) * tile + n + start_h, (tx - 1) * tile + n + start_w), blocks.dtype)
    blk = blocks.reshape(n, n, c, b, ty, tx)
    for i in range(ty):
        for j in range(tx):
            canvas[:, :, i * tile:i * tile + n, j * tile:j * tile + n] += blk[:, :, :, :, i, j].transpose(3, 2, 0, 1)
    oh, ow = out_shape[2], out_shape[3]
    return canvas[:, :, start_h:start_h + oh, start_w:start_w + ow] + bias[None, :, None, None]


def _storage(images, channels_last):
    """(flat storage, shape, element strides) of ``images`` [B, C, H, W], NCHW or channels-last."""
    b, c, height, width = images.shape
    if channels_last:
        return images.transpose(0, 2, 3, 1).copy().ravel(), images.shape, (height * width * c, 1, width * c, c)
    return images.copy().ravel(), images.shape, (c * height * width, height * width, width, 1)


def _images(flat, shape, channels_last):
    b, c, height, width = shape
    return flat.reshape(b, height, width, c).transpose(0, 3, 1, 2) if channels_last else flat.reshape(shape)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 4), st.integers(2, 9), st.integers(0, 3), st.integers(1, 15), st.integers(1, 15),
       st.integers(0, 2), st.booleans(), st.integers(0, 99))
def test_channel_major_passes_equal_slicing_and_are_adjoint(b, c, n, k_extra, height, width, padding, channels_last,
                                                            seed):
    k = max(1, n - 1 - k_extra)
    tile = n - k + 1
    padding = min(padding, k - 1)
    rng = np.random.default_rng(seed)
    ty, tx = -(-height // tile), -(-width // tile)
    lanes = b * ty * tx
    x = rng.standard_normal((b, c, height, width))
    tiles = np.empty((tile, tile, c, lanes))
    kernels.tiles_forward_cmajor(*_storage(x, channels_last), tile, ty, tx, tiles)
    np.testing.assert_array_equal(tiles, _tiles_reference(x, tile))
    t = rng.standard_normal(tiles.shape)
    back = _storage(np.full_like(x, np.nan), channels_last)
    kernels.tiles_adjoint_cmajor(t, tile, ty, tx, *back)
    assert np.isclose(np.vdot(tiles, t), np.vdot(x, _images(back[0], x.shape, channels_last)), rtol=1e-12, atol=1e-9)

    oh, ow = height + 2 * padding - k + 1, width + 2 * padding - k + 1
    if oh < 1 or ow < 1:
        return
    start_h = start_w = k - 1 - padding
    blocks = rng.standard_normal((n, n, c, lanes))
    bias = rng.standard_normal(c)
    out = _storage(np.full((b, c, oh, ow), np.nan), channels_last)  # every element must be written
    kernels.overlap_add_cmajor(blocks, tile, ty, tx, start_h, start_w, bias, *out)
    got = _images(out[0], out[1], channels_last)
    np.testing.assert_allclose(got, _overlap_add_reference(blocks, tile, ty, tx, start_h, start_w, bias, got.shape),
                               atol=1e-12)
    g = rng.standard_normal(got.shape)
    gb = np.empty_like(blocks)
    kernels.overlap_add_adjoint_cmajor(*_storage(g, channels_last), tile, ty, tx, start_h, start_w, gb)
    kernels.overlap_add_cmajor(blocks, tile, ty, tx, start_h, start_w, np.zeros(c), *out)
    assert np.isclose(np.vdot(_images(out[0], out[1], channels_last), g), np.vdot(blocks, gb), rtol=1e-12, atol=1e-9)


def test_block_form_is_chosen_where_measured_to_pay():
    """Narrow layers with many lanes per channel (fmnist_vgg's first block at batch 128) take the block
    form; VGG16's 64-channel conv1_2 and a one-tile 7x7 layer at batch 128 do not."""
    assert torch_ops.product_form(16, 16, 9, 128 * 16) == "block"
    assert torch_ops.product_form(64, 64, 8, 8 * 38 * 38) != "block"
    assert torch_ops.product_form(32, 32, 9, 128) != "block"


def test_training_plan_measures_forward_and_backward_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 3, padding=1))
    x = torch.randn(4, 1, 14, 14)
    plan = plan_spectral(model, x, (8, 9), reps=1, training=True)
    assert set(plan) == {"0", "2"}
    for choice in plan.values():
        assert choice.measured == "forward+backward" and set(choice.seconds) == {"conv2d", 8, 9}
        assert choice.fft_size in (8, 9) and "(forward+backward)" in choice.line()
    assert all(p.grad is None for p in model.parameters())  # the timed backward passes ran on copies
    lines = []
    spec = to_spectral(model, "auto", example_input=x, candidates=(8, 9), training=True, report=lines.append)
    assert len(lines) == 2 and all("forward+backward" in line for line in lines)
    torch.testing.assert_close(spec(x), model(x), atol=1e-5, rtol=1e-5)
