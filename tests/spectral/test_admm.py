"""ADMM pruning (tiny, fast)."""

from __future__ import annotations

import copy
from dataclasses import replace

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
def _one_thread(one_torch_thread):
    pass


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
    # 8 steps per epoch: 30 ADMM steps, 20 retraining steps
    cfg = AdmmConfig(density=0.25, admm_epochs=30 / 8, z_every=5, rho0=3.0, rho_max=3.0 * 1.3 ** 6, optimizer="sgd",
                     lr=0.05, retrain_epochs=20 / 8, batch_size=32, seed=0)
    model, masks, hist = admm_prune(model, x, y, cfg)
    layers = spectral_layers(model)
    assert set(masks) == set(layers) and len(layers) == 2
    assert [h[0] for h in hist.steps] == ["admm"] * 30 + ["retrain"] * 20
    for name, mod in layers.items():
        mask = mod.mask_standard().numpy()
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
    cfg = AdmmConfig(density=0.5, admm_epochs=10 / 8, z_every=5, retrain_epochs=5 / 8, batch_size=32, seed=3)
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
    # a data set of the wrong shape, and labels that do not match
    with pytest.raises(UsageError, match=r"do not fit the model"):
        admm_prune(model, torch.zeros(64, 3, 8, 8), y[:64], AdmmConfig(batch_size=32))
    with pytest.raises(UsageError, match=r"must be \[n, C, H, W\]"):
        admm_prune(model, torch.zeros(64, 8, 8), y[:64], AdmmConfig(batch_size=32))
    with pytest.raises(UsageError, match=r"labels must be \[n\]"):
        admm_prune(model, x[:64], y[:60], AdmmConfig(batch_size=32))
    with pytest.raises(UsageError, match=r"labels must lie in \[0, 2\)"):
        admm_prune(model, x[:64], y[:64] + 5, AdmmConfig(batch_size=32))
    with pytest.raises(UsageError, match="scope"):
        admm_prune(model, x, y, AdmmConfig(scope="global"))


def test_hardware_aware_admm_keeps_equal_counts_per_kernel():
    model, x, y = _toy()
    cfg = AdmmConfig(density=0.25, scope="kernel", admm_epochs=2, z_every=4, rho0=1.0, rho_max=5.0, lr=0.05,
                     retrain_epochs=1, batch_size=32, seed=0)
    model, masks, hist = admm_prune(model, x, y, cfg)
    for mask in masks.values():
        per_kernel = mask.reshape(mask.shape[0] * mask.shape[1], -1).sum(1)
        # every kernel the same count: round(0.25 * 40) = 10, or 9 where a conjugate pair does not fit
        assert per_kernel.max() == 10 and per_kernel.min() >= 9
    assert hist.primal_residual[-1] < hist.primal_residual[0]
    assert _accuracy(model, x, y) >= 0.9


def test_checkpoint_resume_equals_an_uninterrupted_run(tmp_path):
    cfg = AdmmConfig(density=0.5, admm_epochs=12 / 8, z_every=4, retrain_epochs=6 / 8, batch_size=32, seed=1)
    model, x, y = _toy()
    _, want_masks, _ = admm_prune(model, x, y, cfg)
    want = model(x[:8]).detach()

    class Stop(Exception):
        pass

    for stop_phase, stop_step in (("admm", 7), ("retrain", 3)):
        ckpt = tmp_path / f"{stop_phase}.ckpt"
        model, x, y = _toy()

        def interrupt(phase, step, steps, loss, acc, stop_phase=stop_phase, stop_step=stop_step):
            if phase == stop_phase and step == stop_step:
                raise Stop

        with pytest.raises(Stop):
            admm_prune(model, x, y, cfg, progress=interrupt, checkpoint=ckpt, checkpoint_every=2)
        assert ckpt.exists()
        model, x, y = _toy()  # a fresh process: nothing but the checkpoint survives
        _, masks, _ = admm_prune(model, x, y, cfg, checkpoint=ckpt, checkpoint_every=2)
        assert all(np.array_equal(masks[k], want_masks[k]) for k in want_masks)
        torch.testing.assert_close(model(x[:8]).detach(), want)


def test_checkpoint_of_another_model_or_setting_is_refused_and_kept(tmp_path):
    cfg = AdmmConfig(density=0.5, admm_epochs=4 / 8, z_every=2, retrain_epochs=1 / 8, batch_size=32, seed=1)
    model, x, y = _toy()
    ckpt = tmp_path / "run.ckpt"
    admm_prune(model, x, y, cfg, checkpoint=ckpt)
    before = ckpt.read_bytes()
    other = to_spectral(torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.Flatten(),
                                            torch.nn.Linear(3 * 64, 2)), 8)
    with pytest.raises(UsageError, match="another model"):
        admm_prune(other, x, y, cfg, checkpoint=ckpt)
    model, x, y = _toy()
    with pytest.raises(UsageError, match="other settings"):
        admm_prune(model, x, y, AdmmConfig(density=0.25, admm_epochs=4 / 8, z_every=2, retrain_epochs=1 / 8,
                                           batch_size=32, seed=1), checkpoint=ckpt)
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(UsageError, match="not a readable ADMM checkpoint"):
        admm_prune(model, x, y, cfg, checkpoint=tmp_path / "junk.ckpt")
    assert ckpt.read_bytes() == before


def test_augment_batch_is_a_shift_and_flip_of_each_image():
    from flexspec.spectral.admm import augment_batch

    gen = torch.Generator().manual_seed(3)
    x = torch.randn(40, 2, 7, 9, generator=gen)
    out = augment_batch(x, 2, True, torch.Generator().manual_seed(5)).numpy()
    xs = x.numpy()
    seen = set()
    for i in range(len(xs)):  # brute force: some shift (dy, dx) in [-2, 2]^2 of the zero-padded image, maybe flipped
        pad = np.pad(xs[i], ((0, 0), (2, 2), (2, 2)))
        hits = [(dy, dx, f) for dy in range(5) for dx in range(5) for f in (False, True)
                if np.array_equal(out[i], (lambda c: c[..., ::-1] if f else c)(pad[:, dy:dy + 7, dx:dx + 9]))]
        assert hits, f"image {i} is no shift/flip of its input"
        seen.update(hits)
    assert len({h[:2] for h in seen}) > 5 and {h[2] for h in seen} == {False, True}  # both flips, many shifts
    assert torch.equal(augment_batch(x, 0, False, gen), x)


def test_distillation_objective_matches_the_kl_of_torch_distributions():
    from torch.distributions import Categorical, kl_divergence

    from flexspec.spectral.admm import _objective

    torch.manual_seed(0)
    teacher = torch.nn.Linear(5, 4)
    xb, yb, logits = torch.randn(6, 5), torch.randint(0, 4, (6,)), torch.randn(6, 4)
    a, t = 0.7, 3.0
    got = _objective(AdmmConfig(distill_weight=a, distill_temperature=t), teacher)(logits, xb, yb)
    with torch.no_grad():
        kl = kl_divergence(Categorical(logits=teacher(xb) / t), Categorical(logits=logits / t)).mean()
    ce = -torch.log_softmax(logits, 1)[torch.arange(6), yb].mean()
    torch.testing.assert_close(got, (1 - a) * ce + a * t * t * kl)


def test_admm_with_the_full_recipe_prunes_and_keeps_the_task():
    model, x, y = _toy()
    teacher = copy.deepcopy(model)  # the dense start
    cfg = AdmmConfig(density=0.25, admm_epochs=30 / 8, z_every=5, rho0=3.0, rho_max=3.0 * 1.3 ** 6, lr=0.05,
                     retrain_epochs=20 / 8, retrain_optimizer="sgd", retrain_lr=0.02, batch_size=32,
                     augment_shift=1, augment_flip=False, distill_weight=0.5, distill_temperature=2.0)
    before = _accuracy(model, x, y)
    model, masks, _ = admm_prune(model, x, y, cfg, teacher=teacher)
    for mod in spectral_layers(model).values():
        assert abs(mod.mask_standard().numpy().mean() - 0.25) <= 1.5 / mod.mask.numel() + 1e-9
    assert _accuracy(model, x, y) >= min(before, 0.95) - 0.05


def test_bad_recipe_is_refused():
    model, x, y = _toy()
    for bad, msg in ((dict(distill_weight=0.5), "needs a teacher"), (dict(retrain_optimizer="rmsprop"), "sgd"),
                     (dict(augment_shift=-1), "augment_shift"), (dict(distill_weight=1.5), "distill_weight")):
        with pytest.raises(UsageError, match=msg):
            admm_prune(model, x, y, AdmmConfig(batch_size=32, **bad))


def test_bank_scope_balances_the_banks_of_every_kernel_group():
    from flexspec.schedule import schedule_layer

    model, x, y = _toy()
    cfg = AdmmConfig(density=0.25, scope="bank", pes=4, banks=4, admm_epochs=16 / 8, z_every=4, rho0=1.0,
                     rho_max=5.0, lr=0.05, retrain_epochs=4 / 8, batch_size=32)
    model, masks, hist = admm_prune(model, x, y, cfg)
    for name, mask in masks.items():
        flat = mask.reshape(mask.shape[0], mask.shape[1], -1)
        assert np.all(flat.sum(axis=2) == 10)  # round(0.25 * 40) per kernel
        sched = schedule_layer(flat, 4, 4, 1, bank_map=hist.bank_maps[name])
        assert sched.pe_utilization >= 10 / 11  # every group within one read of the PE bound


def test_checkpoint_from_before_a_new_setting_resumes(tmp_path):
    cfg = AdmmConfig(density=0.5, admm_epochs=4 / 8, z_every=2, retrain_epochs=1 / 8, batch_size=32, seed=1)
    model, x, y = _toy()
    ckpt = tmp_path / "run.ckpt"
    admm_prune(model, x, y, cfg, checkpoint=ckpt)
    state = torch.load(ckpt, weights_only=False)
    del state["config"]["ports"]  # as written by a version without that setting
    torch.save(state, ckpt)
    model, x, y = _toy()
    admm_prune(model, x, y, cfg, checkpoint=ckpt)  # same settings otherwise: resumes (here: already done)
    with pytest.raises(UsageError, match="other settings"):
        admm_prune(model, x, y, replace(cfg, ports=2), checkpoint=ckpt)
