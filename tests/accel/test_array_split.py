"""The design's ``array_split`` field: "tiles" (the as-built replicated layer engine: every array runs
the whole program on its own tiles) against "tiles+groups" (the best a_t x a_g split per run), in the
config, the simulator, the PE-array rule, the search and the CLIs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from flexspec.accel import layer_cycles, pe_rule
from flexspec.accel.arch import ARRAY_SPLITS, AcceleratorConfig
from flexspec.accel.kernels import resolve_kernels
from flexspec.accel.search import PER_ARRAY, Design, candidates, describe_design, estimate_cycles, resources
from flexspec.accel.sim import simulate_network
from flexspec.cli import main as cli_main
from flexspec.devices import load_device
from flexspec.errors import UsageError
from flexspec.workload.layers import Network
from flexspec.workload.zoo import get_network


def test_field_is_validated_and_names_its_splits():
    assert ARRAY_SPLITS == ("tiles+groups", "tiles")
    assert AcceleratorConfig(arrays=6).group_splits == (1, 2, 3, 6)
    assert AcceleratorConfig(arrays=6, array_split="tiles").group_splits == (1,)
    with pytest.raises(UsageError, match="array_split must be one of tiles\\+groups, tiles, got 'groups'"):
        AcceleratorConfig(array_split="groups")
    assert AcceleratorConfig(array_split="tiles").to_dict()["array_split"] == "tiles"


@pytest.fixture(scope="module")
def small_net():
    net = get_network("fmnist_vgg")
    masks, _, _ = resolve_kernels(net, "random", density=0.3, seed=3)
    return net, masks


def test_simulator_honours_the_split(small_net, monkeypatch):
    """'tiles' equals the design restricted to a_g = 1 by hand in the two places that split (the
    benchmark's former monkeypatch of the simulator's split (now ``slice_makespan``), and the same restriction of the
    PE-array rule that picks the blockings); 'tiles+groups' is the unrestricted design; with 8 arrays
    on 28 x 28 .. 7 x 7 layers (25 .. 4 tiles) the tiles-only split never computes faster, and on some
    layers slower."""
    net, masks = small_net
    # one IFFT: 'tiles' deals its items by tile over E engines, 'tiles+groups' at a_g = 1 puts the
    # one slice on one IFFT (ifft_assign); with E = 1 the two charge the same IFFT time
    cfg = AcceleratorConfig(arrays=8, pes=4, banks=10, ports=2, fft_engines=2, ifft_engines=1, fft_size=8)
    both = simulate_network(net, "zcu102", cfg, masks, histograms=False)
    tiles = simulate_network(net, "zcu102", replace(cfg, array_split="tiles"), masks, histograms=False)
    sliced = layer_cycles.slice_makespan
    monkeypatch.setattr(layer_cycles, "slice_makespan",
                        lambda t, a, divisors, rows_of, interval, lower=None, floor=None: sliced(t, a, (1,), rows_of,
                                                                                       interval))
    # the PE-array rule times its candidates with the same split (pe_rule.blocking_cycles)
    full = pe_rule.sliced_array_makespan
    monkeypatch.setattr(pe_rule, "sliced_array_makespan",
                        lambda sl, ch, lo, hi, t, a, divisors, *rest, **kw: full(sl, ch, lo, hi, t, a, (1,), *rest,
                                                                                  **kw))
    by_hand = simulate_network(net, "zcu102", cfg, masks, histograms=False)
    assert [lay.cycles for lay in tiles.layers] == [lay.cycles for lay in by_hand.layers]
    assert [lay.cycles for lay in both.layers] != [lay.cycles for lay in by_hand.layers]
    pairs = [(t.compute_cycles, b.compute_cycles) for t, b in zip(tiles.layers, both.layers, strict=True)]
    assert all(t >= b for t, b in pairs) and any(t > b for t, b in pairs)


def test_search_per_array_implies_tiles_and_prints_it():
    (cfg,) = candidates("zcu102", 8, (8,), PER_ARRAY, ((10, 1),), (False,), readout_rows=(1,))
    assert cfg.array_split == "tiles"
    pools = candidates("zcu102", 8, (8,), (2,), ((10, 1),), (False,), readout_rows=(1,))
    assert pools and all(c.array_split == "tiles+groups" for c in pools)
    asks = candidates("zcu102", 8, (8,), (2,), ((10, 1),), (False,), readout_rows=(1,), array_split="tiles")
    assert asks and all(c.array_split == "tiles" and c.group_splits == (1,) for c in asks)
    asked = asks[0]
    lines = describe_design(Design(asked, resources(asked, load_device("zcu102")), {"array_split": "requested"}, {}), "zcu102")
    assert "arrays split tiles (requested)" in lines[0]


@pytest.mark.parametrize("cmd", [["simulate", "fmnist_vgg", "--device", "zcu102"], ["run", "fmnist_vgg"]])
def test_cli_flag_bad_value_is_one_usage_line(cmd, capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        cli_main(cmd + ["--array-split", "groups"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "--array-split: invalid choice: 'groups'" in err[-1]
    assert not list(tmp_path.iterdir())


def test_simulate_cli_reaches_the_simulator(capsys):
    code = cli_main(["simulate", "fmnist_vgg", "--device", "zcu102", "--random-masks", "--arrays", "4", "--pes", "4",
                     "--array-split", "tiles"])
    assert code == 0
    out = capsys.readouterr().out
    assert "arrays split tiles (requested)" in out


def test_search_ranking_charges_the_tiles_only_split():
    """estimate_cycles' compute term with 'tiles': ceil(T / A) tile passes of nnz / P each (a 7 x 7 layer
    has 4 tiles at N = 8, so 8 arrays leave half idle), against nnz x T / (A x P) with 'tiles+groups'."""
    net = get_network("fmnist_vgg")
    lay = next(x for x in net.spectral_layers if x.height == 7)
    one = Network("one", (lay.in_channels, lay.height, lay.width), (lay,))
    mask = np.ones((lay.out_channels, lay.in_channels, 40), dtype=bool)  # dense: compute bound
    # one FFT engine: every split a_t x a_g of the 8 arrays builds (F = 1 divides every a_t)
    cfg = AcceleratorConfig(arrays=8, pes=4, banks=10, ports=2, fft_engines=1, ifft_engines=8, fft_size=8)
    dev = load_device("u200")
    both = estimate_cycles(one, {lay.name: mask}, cfg, dev)
    tiles = estimate_cycles(one, {lay.name: mask}, replace(cfg, array_split="tiles"), dev)
    assert both == 4 * mask.sum() / 32
    assert tiles == 1 * mask.sum() / 4 == 2 * both
