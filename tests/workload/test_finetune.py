"""admm_finetune on the user's own model and data: the recipe options, and bad input refused early."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from model_helpers import small_cnn  # noqa: E402

from flexspec import datasets  # noqa: E402
from flexspec.errors import UsageError  # noqa: E402
from flexspec.schedule import schedule_layer  # noqa: E402
from flexspec.spectral.admm import AdmmConfig, bank_maps, spectral_layers  # noqa: E402
from flexspec.spectral.torch_ops import to_spectral  # noqa: E402
from flexspec.workload.finetune import admm_finetune  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _fmnist_loader(n=128, size=16, batch=32):
    """The shipped 1,000-image Fashion-MNIST subset, centre-cropped to size x size."""
    images, labels = datasets.fashion_mnist_subset()
    lo = (28 - size) // 2
    x = torch.from_numpy(datasets.to_float(images[:n]))[:, :, lo:lo + size, lo:lo + size]
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.from_numpy(labels[:n].astype(np.int64))),
                                       batch_size=batch)


def test_bank_scope_with_distillation_and_augmentation_on_real_images():
    cfg = AdmmConfig(admm_epochs=2, z_every=4, retrain_epochs=1, batch_size=32, augment_shift=1, augment_flip=True,
                     distill_weight=0.5, pes=4, banks=4, retrain_optimizer="sgd", retrain_lr=0.01)
    network, net_k = admm_finetune(small_cnn(), (1, 16, 16), _fmnist_loader(), density=0.25, scope="bank",
                                   config=cfg)
    assert set(net_k.layers) == {lay.name for lay in network.spectral_layers}
    for ssk in net_k.layers.values():
        per_kernel = ssk.nnz_per_kernel()
        assert per_kernel.min() == per_kernel.max() == 10  # round(0.25 * 40) entries in every kernel
    # the bank map the projection balanced for: the scheduler's auto map of the starting per-kernel masks
    spec = to_spectral(small_cnn(), 8)
    maps = bank_maps(spectral_layers(spec), {n: 0.25 for n in spectral_layers(spec)}, 4)
    for path, bank_of in maps.items():
        ssk = net_k.layers[path.replace(".", "_")]
        mask = ssk.mask().reshape(ssk.out_channels, ssk.in_channels, -1)
        sched = schedule_layer(mask, 4, 4, 1, bank_map=bank_of)
        # every group of 4 kernels (10 entries each) within one read of the PE bound
        assert sched.schedule.cycles.max() <= 11 and sched.pe_utilization >= 10 / 11


@pytest.mark.parametrize("density", [0.0, -0.25, 1.5, "dense"])
def test_density_outside_zero_one_is_refused_before_any_work(density):
    with pytest.raises(UsageError, match="density"):
        admm_finetune(small_cnn(), (1, 16, 16), iter(()), density=density)  # the data are never read


def test_loader_of_the_wrong_shape_is_refused():
    model = small_cnn()
    flat = [(torch.zeros(8, 16, 16), torch.zeros(8, dtype=torch.long))]  # no channel axis
    with pytest.raises(UsageError, match=r"batch 0 .*shape \(8, 16, 16\).*\[batch, 1, 16, 16\]"):
        admm_finetune(model, (1, 16, 16), flat, density=0.25)
    mixed = [(torch.zeros(8, 1, 16, 16), torch.zeros(8, dtype=torch.long)),
             (torch.zeros(8, 1, 12, 12), torch.zeros(8, dtype=torch.long))]
    with pytest.raises(UsageError, match=r"batch 1 .*\(8, 1, 12, 12\)"):
        admm_finetune(model, (1, 16, 16), mixed, density=0.25)
    with pytest.raises(UsageError, match="labels of shape"):
        admm_finetune(model, (1, 16, 16), [(torch.zeros(8, 1, 16, 16), torch.zeros(8, 10))], density=0.25)
    with pytest.raises(UsageError, match="integer classes"):
        admm_finetune(model, (1, 16, 16), [(torch.zeros(8, 1, 16, 16), torch.zeros(8))], density=0.25)
    with pytest.raises(UsageError, match=r"\(inputs, labels\)"):
        admm_finetune(model, (1, 16, 16), [torch.zeros(8, 1, 16, 16)], density=0.25)
