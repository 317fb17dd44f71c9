"""Buildable designs: the array splits a design admits (``AcceleratorConfig.group_splits``) are the ones
the generated pool cluster (``flexspec.rtl.cluster_case.PoolShape``) accepts, and the search returns
only such designs, over devices and overrides.  The rule is not copied here: each split is checked by
constructing the cluster's shape, which raises UsageError for one it cannot build."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.kernels import resolve_kernels
from flexspec.accel.search import (SPLIT_SLACK, candidates, engine_counts, estimate_cycles, pool_points,
                                   resolve_design)
from flexspec.cli import main as cli_main
from flexspec.devices import load_device
from flexspec.errors import DoesNotFitError, UsageError
from flexspec.rtl.cluster_case import PoolShape
from flexspec.workload.zoo import get_network

DEVICES = ("u200", "u250", "vcu118", "zcu102", "vc709", "s10gx2800")


def _cluster_builds(a_t: int, a_g: int, fft: int, ifft: int) -> bool:
    try:
        PoolShape(a_t, a_g, fft, ifft)
    except UsageError:
        return False
    return True


def test_admitted_splits_are_exactly_the_ones_the_cluster_builds():
    """Brute force over A <= 36, F <= A + 2, E in {1, F, 2F}, both array splits: every split the
    config admits builds, every split the cluster builds (with a_g = 1 alone for "tiles") is
    admitted, and the config is buildable exactly when one does."""
    for a in range(1, 37):
        for f in range(1, a + 3):
            for e in {1, f, 2 * f}:
                for split in ("tiles+groups", "tiles"):
                    cfg = AcceleratorConfig(arrays=a, fft_engines=f, ifft_engines=e, array_split=split)
                    allowed = [g for g in range(1, a + 1) if a % g == 0 and (split != "tiles" or g == 1)]
                    builds = tuple(g for g in allowed if _cluster_builds(a // g, g, f, e))
                    assert cfg.buildable_splits == builds, (a, f, e, split)
                    assert cfg.buildable == bool(builds)
                    if builds:
                        assert cfg.group_splits == builds
                        assert cfg.unbuildable_reason() is None
                    else:
                        assert "not buildable by the generated RTL" in cfg.unbuildable_reason()


def test_the_headline_engine_count_is_not_buildable_at_70_arrays():
    """The merged main's U200 headline (70 arrays, 16 engines) is the case the search used to return."""
    cfg = AcceleratorConfig(arrays=70, fft_engines=16, ifft_engines=16)
    assert not cfg.buildable
    assert AcceleratorConfig(arrays=70, fft_engines=14, ifft_engines=14).buildable_splits == (1, 5)


def test_engine_counts_and_pool_points_only_pair_buildable_counts():
    for most in range(1, 130):
        for e in (8, 16, 32):
            pts = pool_points(most, e)
            assert all(most * (1 - SPLIT_SLACK) <= a <= most for a, _ in pts)
            for a, f in pts:
                assert AcceleratorConfig(arrays=a, fft_engines=f, ifft_engines=f).buildable
                assert e / 2 <= f <= 2 * e
            # every A of the window with a divisor near e contributes it
            for a in (n for n in range(1, most + 1) if n >= most * (1 - SPLIT_SLACK)):
                near = [d for d in range(1, a + 1) if a % d == 0 and e / 2 <= d <= 2 * e]
                assert bool(near) == any(x == a for x, _ in pts), (most, e, a)
            fixed = pool_points(most, e, engines_fixed=True)
            assert all(f == e and a % e == 0 and a <= most for a, f in fixed)
            assert bool(fixed) == (most >= e)
    assert pool_points(3, 8, exact=True) == [(3, 3)] and pool_points(5, 32, exact=True) == [(5, 5)]
    assert engine_counts(70, 16) == (14,) and engine_counts(70, 8) == (7, 10) and engine_counts(64, 16) == (16,)


@pytest.mark.parametrize("device", DEVICES)
def test_search_space_is_buildable_and_fits(device):
    dev = load_device(device)
    space = candidates(dev, 8)
    assert space
    for cfg in space:
        assert cfg.buildable, cfg
        assert any(_cluster_builds(cfg.arrays // g, g, cfg.fft_engines, cfg.ifft_engines) for g in cfg.group_splits)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(device=st.sampled_from(DEVICES), arrays=st.one_of(st.none(), st.integers(1, 80)),
       engines=st.one_of(st.none(), st.integers(1, 40)), pes=st.one_of(st.none(), st.sampled_from((4, 8, 16))),
       split=st.sampled_from((None, "tiles")))
def test_search_never_returns_an_unbuildable_design(device, arrays, engines, pes, split):
    """Any overrides: the resolved design builds (a cluster shape of one of its splits constructs), or the
    request is refused with one error naming why (UsageError: A and F given that cannot build;
    DoesNotFitError: nothing fits)."""
    try:
        d = resolve_design(device, 8, arrays=arrays, fft_engines=engines, pes=pes, array_split=split)
    except UsageError as exc:
        assert arrays is not None and engines is not None and arrays % engines
        assert "not buildable by the generated RTL" in str(exc)
        return
    except DoesNotFitError:
        return
    c = d.config
    assert c.buildable
    assert arrays is None or c.arrays == arrays
    assert engines is None or c.fft_engines == engines
    assert any(_cluster_builds(c.arrays // g, g, c.fft_engines, c.ifft_engines) for g in c.group_splits)


def test_estimate_ranks_a_splitting_count_above_a_prime_one():
    """The closed form at the best buildable split: 72 arrays (8 FFTs: a_t in 8, 24, 72) before 73
    with 73 FFT engines (prime: a_t = 73 only, a layer's 9 or 25 tiles leave most arrays idle), as the
    simulator ranks them, though 73 has more PEs."""
    net = get_network("vgg16")
    masks, _, _ = resolve_kernels(net, None)
    dev = load_device("u200")
    cfg = AcceleratorConfig(arrays=72, pes=8, banks=20, ports=1, fft_engines=8, ifft_engines=8, fft_size=8,
                            readout_rows=1)
    memo: dict = {}
    split = estimate_cycles(net, masks, cfg, dev, memo)
    prime = estimate_cycles(net, masks, replace(cfg, arrays=73, fft_engines=73, ifft_engines=73), dev, memo)
    assert split < 0.8 * prime


def test_search_charges_the_fifo_of_the_networks_largest_cout():
    """The searched design's output FIFOs hold CREDITS tiles of the network's largest Cout (a whole
    layer's cout block on one array row, the largest the dataflow may pick), and it still builds."""
    net = get_network("fmnist_vgg")
    masks, _, _ = resolve_kernels(net, "random", density=0.3, seed=3)
    d = resolve_design("zcu102", 8, network=net, masks=masks)
    assert d.config.fifo_channels == max(lay.out_channels for lay in net.spectral_layers)
    assert d.config.buildable and resolve_design("zcu102", 8).config.fifo_channels == 512


def test_cli_refuses_an_unbuildable_request_in_one_line(capsys, tmp_path):
    code = cli_main(["simulate", "fmnist_vgg", "--device", "zcu102", "--random-masks", "--arrays", "6",
                     "--fft-engines", "4"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--arrays 6 with --fft-engines 4: not buildable by the generated RTL" in err[0]
    assert "1, 2, 3, 6" in err[0]
    assert not list(tmp_path.iterdir())
