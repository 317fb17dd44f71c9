import numpy as np
import pytest

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.sim import group_cycles, group_masks, random_masks, simulate_network
from flexspec.cli import main
from flexspec.workload.zoo import get_network

U200_CFG = AcceleratorConfig(arrays=55, pes=32, banks=40, ports=2, fft_engines=64, ifft_engines=64)


@pytest.fixture(scope="module")
def vgg16_u200():
    net = get_network("vgg16")
    masks = random_masks(net, 8, 0.25, 0)
    return net, masks, simulate_network(net, "u200", U200_CFG, masks)


def test_estimate_agrees_with_simulator_on_every_vgg16_layer(vgg16_u200):
    _, _, r = vgg16_u200
    for lay in r.layers:
        assert abs(lay.estimate_cycles / lay.cycles - 1) <= 0.05, lay.name


def test_breakdown_and_bounds(vgg16_u200):
    net, masks, r = vgg16_u200
    total_nnz = sum(int(m.sum()) for m in masks.values())
    assert total_nnz == sum(lay.out_channels * lay.in_channels * 10 for lay in net.spectral_layers)
    for lay in r.layers:
        parts = (lay.compute_cycles + lay.bank_conflict_cycles + lay.memory_stall_cycles + lay.fft_stall_cycles
                 + lay.fill_cycles)
        assert parts == lay.cycles
        assert lay.cycles >= lay.roofline_cycles  # nothing beats the roofline
        assert 0 < lay.dsp_efficiency <= 1
        if lay.bound == "compute":
            assert lay.dsp_efficiency_steady >= 0.9
    assert r.seconds <= 9e-3


def test_compute_cycles_brute_force_small_layer():
    """One compute-bound layer with everything on chip: PE cycles = waves x sum of schedule makespans."""
    net = get_network("vgg16_cifar")
    masks = random_masks(net, 8, 0.25, 3)
    cfg = AcceleratorConfig(arrays=1, pes=16, banks=40, ports=2, fft_engines=64, ifft_engines=64)
    r = simulate_network(net, "u250", cfg, masks)
    lay = r.layers[-1]
    layer = net.layer(lay.name)
    cycles, _, nnz = group_cycles(masks[lay.name], cfg)
    # independent makespan: each group's lower bound max(max PE nnz, ceil(bank load / R)) is optimal
    gm = group_masks(masks[lay.name], 16)
    pe = gm.sum(axis=2).max(axis=1)
    bank = np.ceil(gm.sum(axis=1) / 2).max(axis=1)
    assert np.array_equal(cycles, np.maximum(pe, bank))
    tiles = 1  # 2x2 input, 6x6 tiles
    assert lay.useful_macs == int(nnz.sum()) * tiles
    assert lay.compute_cycles + lay.bank_conflict_cycles >= tiles * int(cycles.sum())
    assert layer.out_channels == 512


def test_baseline_is_not_faster(vgg16_u200):
    net, masks, r = vgg16_u200
    b = simulate_network(net, "u200", U200_CFG, masks, design="baseline")
    assert b.cycles >= r.cycles
    d = r.to_dict()
    assert d["total"]["seconds"] == r.seconds and len(d["layers"]) == 13


def test_cli(capsys, tmp_path):
    assert main(["devices"]) == 0
    assert "vc709" in capsys.readouterr().out
    assert main(["simulate", "vgg16_cifar", "--device", "nosuch"]) == 2
    out = tmp_path / "r.json"
    assert main(["simulate", "vgg16_cifar", "--device", "zcu102", "--arrays", "8", "--pes", "16",
                 "--json", str(out)]) == 0
    import json

    data = json.loads(out.read_text())
    assert data["flexspec"]["device"] == "zcu102" and data["baseline"]["design"] == "baseline"
