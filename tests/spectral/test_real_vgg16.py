"""The shipped deep real model fmnist_vgg16: VGG16's 13 convolutions at 1/8 width, trained on
Fashion-MNIST at 32x32, dense and pruned (benchmarks/fmnist_dense.py, benchmarks/train_fmnist.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from flexspec import datasets
from flexspec.cli import main
from flexspec.errors import InputFileError, UsageError
from flexspec.spectral import real_model as rm
from flexspec.spectral.prune import magnitude_prune
from flexspec.spectral.sparse import SparseNetworkKernels, mask_violations
from flexspec.workload.zoo import fmnist_vgg16, vgg16

ARCH = rm.FMNIST_VGG16
#: Accuracy floors on the shipped 1,000-image subset, a few points under what the shipped models
#: measure there (BENCHMARKS.md, "fmnist_vgg16"): a model that lost its training falls far below.
FLOOR_DENSE = 0.91  # measured 93.9%
FLOOR_PRUNED = {("admm", 0.25): 0.90, ("admm", 0.125): 0.86, ("admm_hw", 0.25): 0.86}  # measured 92.5 / 89.3 / 89.5%


def shipped():
    return [(m, d) for m in rm.SHIPPED_METHODS for d in rm.SHIPPED_DENSITIES if ARCH.pruned_file(m, d).is_file()]


def test_architecture_is_vgg16s_convolution_stack_at_one_eighth_width():
    """Checked against the zoo's VGG16 (an independent description): the same 13 convolution names
    in the same blocks, each 3x3 same-padding, widths VGG16's // 8, a 2x2 max-pool after each block."""
    big, small = vgg16(), fmnist_vgg16()
    assert [lay.name for lay in small.spectral_layers] == [lay.name for lay in big.spectral_layers]
    for b, s in zip(big.spectral_layers, small.spectral_layers, strict=True):
        assert (s.kernel_size, s.stride, s.padding) == (3, 1, 1) and s.out_channels == b.out_channels // 8
    pools = [lay.name for lay in small.layers if type(lay).__name__ == "PoolLayer"]
    assert pools == [f"pool{i}" for i in range(1, 6)] and small.input_shape == (1, 32, 32)
    weights = rm.load_dense_weights(arch=ARCH)
    assert small.param_count == sum(v.size for v in weights.values())


def test_dense_spatial_and_spectral_models_agree_with_torch_conv2d():
    """The unpruned spectral model (numpy sparse OaA) computes what torch's conv2d model computes
    with the shipped dense weights, in float64 (the exact function)."""
    torch = pytest.importorskip("torch")
    weights = rm.load_dense_weights(arch=ARCH)
    layers = magnitude_prune(rm.spectral_spectra(weights, 8, ARCH), {n: 3 for n in ARCH.conv_names}, 1.0)
    net = SparseNetworkKernels(ARCH.name, 8, layers, "test", True, {n: weights[f"{n}.bias"] for n in ARCH.conv_names},
                               {k: v for k, v in weights.items() if k.startswith("fc")})
    images, _ = datasets.fashion_mnist_subset()
    x = ARCH.prepare(images[:16])
    model = rm.torch_model(arch=ARCH).double()
    model.load_state_dict({k: torch.from_numpy(v).double() for k, v in weights.items()})
    with torch.no_grad():
        want = model(torch.from_numpy(x).double()).numpy()
    # exact conversion: only float32 rounding remains over 13 layers (measured 1.8e-7 x max; float32 eps 1.2e-7)
    np.testing.assert_allclose(rm.numpy_forward(net, x), want, rtol=0, atol=2e-6 * np.abs(want).max())


@pytest.mark.parametrize("method,density", shipped())
def test_shipped_pruned_kernels_are_real_and_at_their_density(method, density):
    net = rm.load_pruned(method, density, ARCH)
    assert net.network == ARCH.name and net.is_real and net.method == method and net.target_density == density
    assert "Fashion-MNIST" in net.provenance and list(net.layers) == list(ARCH.conv_names)
    for ssk in net.layers.values():
        if method == "admm_hw":  # every kernel keeps round(d*F) entries (one fewer where a conjugate pair
            per_kernel = ssk.nnz_per_kernel()  # does not fit)
            target = round(density * ssk.num_frequencies)
            assert per_kernel.max() == target and per_kernel.min() >= target - 1
        else:
            assert density - 2 / ssk.mask().size <= ssk.density <= density + 1e-12
        assert mask_violations(ssk.mask(), 8) == 0
    assert ARCH.pruned_file(method, density).stat().st_size < 2_000_000  # the package ships it (BENCHMARKS: sizes)


def test_accuracy_on_the_shipped_subset_is_above_the_measured_floors(one_torch_thread):
    """Dense: torch conv2d; the default pruned model (ADMM 25%, what the accelerator runs): the numpy
    sparse-OaA forward; the others: the torch spectral model (half the time of the numpy one)."""
    torch = pytest.importorskip("torch")
    images, labels = datasets.fashion_mnist_subset()
    x, y = torch.from_numpy(ARCH.prepare(images)), torch.from_numpy(labels.astype(np.int64))
    model = rm.torch_model(arch=ARCH)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in rm.load_dense_weights(arch=ARCH).items()})
    assert rm.torch_accuracy(model, x, y) >= FLOOR_DENSE
    for (method, density), floor in FLOOR_PRUNED.items():
        net = rm.load_pruned(method, density, ARCH)
        if (method, density) == (ARCH.default_method, 0.25):
            acc = rm.numpy_accuracy(net, images, labels)
        else:
            acc = rm.torch_accuracy(rm.spectral_model_from_sparse(net), x, y)
        assert acc >= floor, (method, density, acc)


def test_flexspec_run_uses_the_shipped_real_kernels(tmp_path, capsys):
    assert main(["run", "fmnist_vgg16", "--quiet", "--no-html", "--out", str(tmp_path / "o")]) == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    summary = report["summary"]
    assert summary["weights_is_real"] and "fmnist_vgg16" in summary["weights_provenance"]
    assert summary["latency_seconds"] > 0 and 0.2 < summary["kernel_density_fraction"] <= 0.25
    spectral = [row for row in report["layers"] if row["kind"] == "spectral"]
    assert [row["layer"] for row in spectral] == list(ARCH.conv_names)


def test_a_checkpoint_of_another_model_is_refused(tmp_path, capsys):
    with pytest.raises(InputFileError, match="fmnist_vgg16"):
        rm.load_dense_weights(rm.FMNIST_VGG.dense_file, arch=ARCH)  # fmnist_vgg's dense weights
    other = tmp_path / "relabelled.npz"  # right shapes, recorded as another model
    with np.load(ARCH.dense_file) as data:
        np.savez(other, **{**{k: data[k] for k in data.files}, "meta/model": np.array("fmnist_vgg")})
    with pytest.raises(InputFileError, match="holds weights of model 'fmnist_vgg'"):
        rm.load_dense_weights(other, arch=ARCH)
    with pytest.raises(UsageError, match="layers"):  # fmnist_vgg's pruned kernels relabelled as fmnist_vgg16
        net = rm.load_pruned("admm", 0.25)
        rm.spectral_model_from_sparse(SparseNetworkKernels(ARCH.name, 8, net.layers, "x", True, net.biases,
                                                           net.params))
    fmnist_file = rm.FMNIST_VGG.pruned_file("admm", 0.25)
    assert main(["run", "fmnist_vgg16", "--weights", str(fmnist_file), "--quiet", "--no-html",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(fmnist_file) in err and "fmnist_vgg" in err and "Traceback" not in err
    assert main(["run", "fmnist_vgg16", "--density", "0.5", "--quiet", "--no-html", "--out", str(tmp_path / "o")]) == 2
    assert "densities 0.25, 0.125 only; asked 0.5" in capsys.readouterr().err  # 0.5 is not shipped
