"""The shared FFT/IFFT pool cluster (``flexspec.rtl.cluster``), ending in its output tails
(overlap-add, bias, ReLU, write-back): the layer's spatial output bit-exact with the fixed-point
functional model on a slice of a real layer of the shipped model, cycle-exact with its cycle model
(``flexspec.accel.pool_events.pool_output_cycles``), deliberate faults caught; the block-row build
(``tail=False``) still exact; splits with E not dividing a_g (array row g on IFFT g mod E:
``flexspec.accel.ifft_assign``), a_g < E included; Amaranth for the quick cases, Verilator for one
compiled build."""

from __future__ import annotations

import numpy as np
import pytest

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.functional import calibrate_layer
from flexspec.accel.pool_events import pool_cycles, pool_output_cycles
from flexspec.errors import UsageError
from flexspec.rtl.cluster_case import PoolShape, cluster_case, tail_items
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
    """The write-back equals the functional model's output (after ReLU) pixel for pixel, every
    pixel written once, no bank conflict, done at the cycle model's edge."""
    assert not res["conflict"]
    want = case.expected_output()
    assert res["writes"] == want.size
    assert np.array_equal(res["output"], want)
    assert res["cycles"] == pool_output_cycles(case.spec)


def _check_blocks(res, case):
    assert not res["conflict"]
    assert res["writes"] == case.spec.geometry.out_channels * case.spec.tiles * case.spec.geometry.fft_size
    assert np.array_equal(res["blocks"], case.expected_blocks())
    assert res["cycles"] == pool_cycles(case.spec)


@pytest.fixture(scope="module")
def small_case():
    # two columns on one FFT (so a misroute changes the data), two rows on two IFFTs (one tail each)
    return random_case(PoolShape(2, 2, 1, 2), cout=3, height=7, width=6)


def test_real_layer_slice_bit_and_cycle_exact():
    """A real layer slice through a 6-array pool with two IFFTs and two tails: the spatial output
    equals the functional model's (``fixed_layer``: FFT, MAC, rounding, IFFT, overlap-add, bias,
    ReLU) bit for bit, and done comes at the model's edge; the output is not trivially zero."""
    case = real_slice_case(PoolShape(3, 2, 1, 2))
    assert case.spec.tiles == 9 and len(set(case.spec.row_channels)) == 2
    _check(simulate_cluster(case), case)
    assert np.count_nonzero(case.expected_output()) > case.expected_output().size // 4


@pytest.mark.parametrize("shape", [PoolShape(1, 3, 1, 3), PoolShape(2, 2, 2, 1), PoolShape(1, 3, 1, 2),
                                   PoolShape(2, 2, 2, 3)])
def test_shapes_bit_and_cycle_exact(shape):
    """Three tails side by side; one tail merging both slices (its carries at local channels); E = 2
    not dividing a_g = 3 (IFFT 0's tail holds slices 0 and 2, IFFT 1's slice 1); a_g = 2 < E = 3 (IFFT
    2 idle on this layer: not instantiated, its write-back never valid)."""
    case = random_case(shape)
    if shape == PoolShape(1, 3, 1, 2):
        assert [it[4] for it in tail_items(case.spec, 0)[:2]] == [0, 1]  # slices 0 and 2 at local channels 0, 1
    if shape.ifft_engines > shape.a_g:
        assert tail_items(case.spec, shape.ifft_engines - 1) == []
    _check(simulate_cluster(case), case)


def test_block_rows_bit_and_cycle_exact():
    """The block-row build (``tail=False``: what the glue synthesis generates) with an idle IFFT."""
    case = random_case(PoolShape(2, 2, 2, 3))
    _check_blocks(simulate_cluster(case, tail=False), case)


@pytest.mark.parametrize("fault", ["misroute", "drop_tile", "early_done", "drop_carry"])
def test_faults_are_caught(small_case, fault):
    """A tile sent to the wrong column, a beat the arbiter drops, done one beat early, a dropped
    overlap-add carry: each fails the bit-exact or the cycle check (or hangs, which the harness
    reports)."""
    try:
        res = simulate_cluster(small_case, _fault=fault, max_cycles=pool_output_cycles(small_case.spec) + 200)
    except ToolError as exc:
        assert "never raised done" in str(exc)
        return
    assert not np.array_equal(res["output"], small_case.expected_output()) \
        or res["cycles"] != pool_output_cycles(small_case.spec)


def test_bad_shapes_refused():
    with pytest.raises(UsageError, match="FFT engines must divide"):
        PoolShape(3, 1, 2, 1)
    with pytest.raises(UsageError, match="empty output-channel slice"):
        random_case(PoolShape(1, 3, 1, 1), cout=2)
    with pytest.raises(UsageError, match="idle"):
        random_case(PoolShape(5, 1, 1, 1), height=4, width=4)


@pytest.mark.skipif(not verilator_available(), reason="verilator is not installed (.ci/run installs it)")
def test_verilator_cluster(tmp_path):
    """One compiled build (kept small: its C++ compile is most of this file's time): a 2-array pool
    (one tile broadcast to both rows) on three IFFTs, E not dividing a_g (two tails, the third
    engine idle), bit and cycle exact; its Amaranth run agrees beat for beat (edges included)."""
    case = random_case(PoolShape(1, 2, 1, 3), cout=3, height=7, width=6)
    res = verilate_cluster(case, tmp_path)
    _check(res, case)
    assert res["out_edges"] == simulate_cluster(case)["out_edges"]


def test_cli_writes_the_cluster_and_refuses_bad_shapes(tmp_path, capsys, monkeypatch):
    """``flexspec rtl --cluster``: the Verilog, the host streams and a README; a shape the cluster
    cannot build is one error line, exit 2, nothing written.  Kept small (the Verilog of a 1-array
    pool: its generation is most of this test's time; formats calibrated on 8 images: the count
    changes the formats, not what is written)."""
    from flexspec.cli import main
    from flexspec.rtl import cluster_cli

    monkeypatch.setattr(cluster_cli, "CALIBRATION_IMAGES", 8)
    out = tmp_path / "pool"
    assert main(["rtl", "--layer", "conv1_1", "--cluster", "1,1,1,1", "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["README.md", "flexspec_pool_cluster.v", "input_fft0.hex"]
    text = (out / "flexspec_pool_cluster.v").read_text()
    assert "module flexspec_pool_cluster" in text and "o0_mask" in text
    for bad, why in (("3,2,2,2", "must divide"), ("3,x", "four positive integers"), ("2,40,1,1", "empty"),
                     ("30,1,1,2", "idle")):
        capsys.readouterr()
        assert main(["rtl", "--layer", "conv1_1", "--cluster", bad, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip()
        assert why in err and "\n" not in err
    assert not (tmp_path / "x").exists()
