"""The shared FFT/IFFT pool cluster (``flexspec.rtl.cluster``): bit-exact with the fixed-point
functional model on a slice of a real layer of the shipped model, cycle-exact with its cycle model
(``flexspec.accel.pool_events``), deliberate faults caught; Amaranth for the quick cases, Verilator
for one compiled build."""

from __future__ import annotations

import numpy as np
import pytest

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.functional import calibrate_layer
from flexspec.accel.pool_events import pool_cycles
from flexspec.errors import UsageError
from flexspec.rtl.cluster_case import PoolShape, cluster_case
from flexspec.rtl.export import ToolError
from flexspec.rtl.verilator import verilator_available
from flexspec.spectral.prune import magnitude_mask
from flexspec.spectral.sparse import SparseSpectralKernels
from flexspec.spectral.transform import spectral_kernels

pytest.importorskip("amaranth")
from flexspec.rtl.cluster_cosim import simulate_cluster, verilate_cluster  # noqa: E402


def real_slice_case(shape: PoolShape, cin: int = 2, cout: int = 4, pes: int = 4, banks: int = 4):
    """conv2_1 of the shipped pruned Fashion-MNIST model (14 x 14 input, N = 8: 9 tiles), its first
    ``cin`` input and ``cout`` output channels; the input of test image 0, the formats calibrated on
    the inputs of test images 1-4."""
    from flexspec.rtl.source import RTLOptions, _layer_input, _load_network

    net = _load_network(RTLOptions())
    full = net.layers["conv2_1"]
    ssk = SparseSpectralKernels.from_dense(full.dense()[:cout, :cin], full.mask()[:cout, :cin], full.kernel_size)
    bias = np.asarray(net.biases["conv2_1"])[:cout]
    x = _layer_input(net, "conv2_1", 0)[:cin]
    calib = np.stack([_layer_input(net, "conv2_1", i)[:cin] for i in range(1, 5)])
    quant = calibrate_layer(calib, ssk, 1, bias)
    cfg = AcceleratorConfig(arrays=shape.arrays, pes=pes, banks=banks, ports=1, fft_size=8)
    return cluster_case(ssk, x, quant, cfg, shape, bias)


def random_case(shape: PoolShape, n=4, cin=2, cout=3, height=7, width=6, pes=2, banks=2, seed=3):
    rng = np.random.default_rng(seed)
    wf = spectral_kernels(rng.normal(size=(cout, cin, 3, 3)), n)
    ssk = SparseSpectralKernels.from_dense(wf, magnitude_mask(wf, 0.4), 3)
    bias = rng.normal(size=cout) * 0.3
    quant = calibrate_layer(rng.normal(size=(4, cin, height, width)), ssk, 1, bias)
    cfg = AcceleratorConfig(arrays=shape.arrays, pes=pes, banks=banks, ports=1, fft_size=n)
    return cluster_case(ssk, rng.normal(size=(cin, height, width)), quant, cfg, shape, bias)


def _check(res, case):
    assert not res["conflict"]
    assert res["writes"] == case.spec.geometry.out_channels * case.spec.tiles * case.spec.geometry.fft_size
    assert np.array_equal(res["blocks"], case.expected_blocks())
    assert res["cycles"] == pool_cycles(case.spec)


@pytest.fixture(scope="module")
def real_case():
    # 3 columns x 2 rows = 6 arrays, one FFT for the three columns, two IFFTs
    return real_slice_case(PoolShape(3, 2, 1, 2))


def test_real_layer_slice_bit_and_cycle_exact(real_case):
    """A real layer slice through a 6-array pool: every IFFT block equals the functional model's
    (``fixed_layer``: FFT, MAC, rounding, IFFT) bit for bit, and done comes at the model's edge."""
    assert real_case.spec.tiles == 9 and len(set(real_case.spec.row_channels)) == 2
    res = simulate_cluster(real_case)
    _check(res, real_case)
    assert np.abs(real_case.expected_blocks()).max() > 0


@pytest.mark.parametrize("shape", [PoolShape(1, 3, 1, 2), PoolShape(2, 2, 2, 3)])
def test_shapes_bit_and_cycle_exact(shape):
    """Columns with their own FFTs, rows sharing a tile, more IFFTs than rows (items of one FIFO
    going to different IFFTs: the arbiter's head check)."""
    case = random_case(shape)
    _check(simulate_cluster(case), case)


@pytest.mark.parametrize("fault", ["misroute", "drop_tile", "early_done"])
def test_faults_are_caught(real_case, fault):
    """A tile sent to the wrong column, a beat the arbiter drops, done one row early: each fails
    the bit-exact or the cycle check (or hangs, which the harness reports)."""
    try:
        res = simulate_cluster(real_case, _fault=fault, max_cycles=pool_cycles(real_case.spec) + 200)
    except ToolError as exc:
        assert "never raised done" in str(exc)
        return
    exp = real_case.expected_blocks()
    assert not np.array_equal(res["blocks"], exp) or res["cycles"] != pool_cycles(real_case.spec)


def test_bad_shapes_refused():
    with pytest.raises(UsageError, match="FFT engines must divide"):
        PoolShape(3, 1, 2, 1)
    with pytest.raises(UsageError, match="empty output-channel slice"):
        random_case(PoolShape(1, 3, 1, 1), cout=2)
    with pytest.raises(UsageError, match="idle"):
        random_case(PoolShape(5, 1, 1, 1), height=4, width=4)


@pytest.mark.skipif(not verilator_available(), reason="verilator is not installed (.ci/run installs it)")
def test_verilator_cluster(tmp_path):
    """One compiled build: a 2-array pool (one tile broadcast to both rows, two IFFTs), bit and cycle exact."""
    case = random_case(PoolShape(1, 2, 1, 2), cout=3, height=7, width=6)
    _check(verilate_cluster(case, tmp_path), case)


def test_cli_writes_the_cluster_and_refuses_bad_shapes(tmp_path, capsys):
    """``flexspec rtl --cluster``: the Verilog, the host streams and a README; a shape the cluster
    cannot build is one error line, exit 2, nothing written."""
    from flexspec.cli import main

    out = tmp_path / "pool"
    assert main(["rtl", "--layer", "conv1_1", "--cluster", "2,1,2,1", "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["README.md", "flexspec_pool_cluster.v", "input_fft0.hex", "input_fft1.hex"]
    assert "module flexspec_pool_cluster" in (out / "flexspec_pool_cluster.v").read_text()
    for bad, why in (("3,2,2,2", "must divide"), ("3,x", "four positive integers"), ("2,40,1,1", "empty")):
        capsys.readouterr()
        assert main(["rtl", "--layer", "conv1_1", "--cluster", bad, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip()
        assert why in err and "\n" not in err
    assert not (tmp_path / "x").exists()
