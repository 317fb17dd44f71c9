"""ADMM pruning (tiny, fast)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from flexspec.errors import UsageError  # noqa: E402
from flexspec.spectral.admm import (  # noqa: E402
    AdmmConfig,
    admm_prune,
    magnitude_prune_model,
    spectral_layers,
)
from flexspec.spectral.sparse import SparseSpectralKernels, mask_violations, sparse_oaa_conv2d  # noqa: E402
from flexspec.spectral.torch_ops import to_spectral  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a shared 2-core machine two threads are many times slower."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _toy():
    """Two classes: a bright blob top-left vs bottom-right, on noise; a 2-conv spectral net."""
    gen = torch.Generator().manual_seed(0)
    n = 256
    x = 0.3 * torch.randn(n, 1, 8, 8, generator=gen)
    y = torch.arange(n) % 2
    x[y == 0, :, :3, :3] += 1.0
    x[y == 1, :, 5:, 5:] += 1.0
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(4, 4, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(4 * 64, 2),
    )
    return to_spectral(model, 8), x, y


def _accuracy(model, x, y):
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def test_admm_prunes_to_density_and_keeps_the_task():
    model, x, y = _toy()
    cfg = AdmmConfig(density=0.25, admm_steps=30, z_every=5, rho0=3.0, rho_growth=1.3, optimizer="sgd",
                     lr=0.05, retrain_steps=20, batch_size=32, seed=0)
    model, masks, hist = admm_prune(model, x, y, cfg)
    layers = spectral_layers(model)
    assert set(masks) == set(layers) and len(layers) == 2
    for name, mod in layers.items():
        mask = mod.mask.numpy()
        assert np.array_equal(mask, masks[name])
        assert abs(mask.mean() - 0.25) <= 1.5 / mask.size + 1e-9
        assert mask_violations(mask.reshape(mask.shape[0], mask.shape[1], -1), 8) == 0
    assert len(hist.primal_residual) == 6
    # W is pulled onto the sparse set: ||W - Z|| / ||W|| falls to (nearly) zero
    assert hist.primal_residual[-1] < 0.05 < hist.primal_residual[0]
    assert _accuracy(model, x, y) >= 0.9
    # the exported sparse kernels compute what the masked torch layer computes
    conv0 = layers["0"]
    ssk = SparseSpectralKernels.from_dense(conv0.spectrum().detach().numpy(), masks["0"], 3)
    want = conv0(x[:4]).detach().numpy()
    got = sparse_oaa_conv2d(x[:4].numpy(), ssk, 1, conv0.bias.detach().numpy())
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_admm_is_deterministic():
    cfg = AdmmConfig(density=0.5, admm_steps=10, z_every=5, retrain_steps=5, batch_size=32, seed=3)
    outs = []
    for _ in range(2):
        model, x, y = _toy()
        model, masks, _ = admm_prune(model, x, y, cfg)
        outs.append((masks, model(x[:8]).detach()))
    assert all(np.array_equal(outs[0][0][k], outs[1][0][k]) for k in outs[0][0])
    torch.testing.assert_close(outs[0][1], outs[1][1])


def test_magnitude_prune_model_per_layer_densities():
    model, x, _ = _toy()
    masks = magnitude_prune_model(model, {"0": 0.5, "default": 0.25})
    assert abs(masks["0"].mean() - 0.5) < 0.02 and abs(masks["2"].mean() - 0.25) < 0.01


def test_admm_errors():
    plain = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    x, y = torch.zeros(64, 1, 2, 2), torch.zeros(64, dtype=torch.long)
    with pytest.raises(UsageError, match="no SpectralConv2d"):
        admm_prune(plain, x, y)
    with pytest.raises(UsageError, match="no SpectralConv2d"):
        magnitude_prune_model(plain, 0.5)
    model, x, y = _toy()
    for bad in (0.0, 1.2, -1):
        with pytest.raises(UsageError, match=r"\(0, 1\]"):
            admm_prune(model, x, y, AdmmConfig(density=bad))
    with pytest.raises(UsageError, match="batch_size"):
        admm_prune(model, x[:8], y[:8], AdmmConfig(batch_size=64))
