"""PE load balance: grouping over a whole cout block, LPT assignment to arrays, the dataflow hook."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flexspec.accel._lpt import lpt_span
from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.engine import pass_shape
from flexspec.accel.kernels import PRUNE_SCOPES, resolve_kernels
from flexspec.accel.sim import array_makespan, balanced_pe_cycles, pe_balance, schedule_layer_blocks, simulate_network
from flexspec.cli import main
from flexspec.errors import UnknownNameError
from flexspec.spectral.geometry import num_tiles
from flexspec.workload.zoo import get_network


def _best_partition_cost(loads, p):
    """Brute force: min over all partitions of ``loads`` into groups of p of the sum of group maxima."""
    loads = list(loads)
    if not loads:
        return 0
    first, rest = loads[0], loads[1:]
    best = None
    for mates in itertools.combinations(range(len(rest)), min(p - 1, len(rest))):
        group = [first] + [rest[k] for k in mates]
        left = [x for k, x in enumerate(rest) if k not in mates]
        c = max(group) + _best_partition_cost(left, p)
        best = c if best is None else min(best, c)
    return best


@settings(max_examples=40, deadline=None)
@given(p=st.sampled_from([2, 3]), groups=st.integers(1, 3), cin=st.integers(1, 3), data=st.data())
def test_balanced_block_cycles_are_the_optimal_partition(p, groups, cin, data):
    cout = p * groups
    nnz = np.array(data.draw(st.lists(st.integers(0, 40), min_size=cout * cin, max_size=cout * cin))).reshape(cout, cin)
    want = sum(_best_partition_cost(nnz[:, i], p) for i in range(cin))
    assert balanced_pe_cycles(nnz, p, cout) == want


@settings(max_examples=60, deadline=None)
@given(p=st.sampled_from([4, 8, 32]), blocks=st.integers(1, 4), cin=st.integers(1, 6), seed=st.integers(0, 999))
def test_block_of_2p_never_worse_than_fixed_p_slices(p, blocks, cin, seed):
    rng = np.random.default_rng(seed)
    cout = 2 * p * blocks
    nnz = rng.integers(0, 38, size=(cout, cin))
    fixed = sum(int(nnz[j:j + p, i].max()) for j in range(0, cout, p) for i in range(cin))  # P-slices, by hand
    assert balanced_pe_cycles(nnz, p, p) == fixed
    assert balanced_pe_cycles(nnz, p, 2 * p) <= fixed
    assert balanced_pe_cycles(nnz, p, cout) <= balanced_pe_cycles(nnz, p, 2 * p)
    b = pe_balance(nnz, p, [p, 2 * p, cout])
    assert np.all(np.diff(b) >= -1e-12) and b.max() <= 1 + 1e-12


def test_simulator_groups_over_the_block_and_its_compute_is_the_sum_of_group_makespans():
    """The schedules group over the whole cout block: the conflict-free PE bound of each group
    sums to balanced_pe_cycles; on one array, compute = tiles x the engine's cycles per tile for
    a program of the summed group makespans (the makespan sum itself when compute bound)."""
    net = get_network("fmnist_vgg")
    masks, _, _ = resolve_kernels(net, None)
    cfg = AcceleratorConfig(arrays=1, pes=8, banks=20, ports=2, fft_engines=4, ifft_engines=4)
    r = simulate_network(net, "zcu102", cfg, masks, histograms=False)
    seen = 0
    for lay in r.layers:
        if lay.kind != "spectral":
            continue
        m = masks[lay.name]
        sch = schedule_layer_blocks(m, cfg, lay.cout_block)
        assert int(sch.pe_bound.sum()) == balanced_pe_cycles(m.sum(axis=2), cfg.pes, lay.cout_block)
        tiles = num_tiles(net.layer(lay.name), cfg.fft_size)
        busy = lay.compute_cycles + lay.bank_conflict_cycles
        assert busy >= tiles * int(sch.cycles.sum())
        if lay.cin_block >= m.shape[1] and lay.cout_block >= m.shape[0]:  # one run: the engine's pass, every tile
            shape = pass_shape(sch.cycles.ravel(), m.shape[1], m.shape[0], sch.schedule.bank_of, cfg.banks, cfg.pes,
                               cfg.fft_size)
            assert busy == tiles * shape.interval()
        seen += 1
    assert seen >= 3


def _optimal_assignment(cyc, bins):
    """Brute force: the smallest makespan of any assignment of the jobs ``cyc`` to ``bins`` bins."""
    if bins == 1 or len(cyc) == 0:
        return int(sum(cyc))
    best = None
    for choice in itertools.product(range(bins), repeat=len(cyc) - 1):  # job 0 on bin 0 (symmetry)
        load = [0] * bins
        load[0] = int(cyc[0])
        for x, b in zip(cyc[1:], choice, strict=True):
            load[b] += int(x)
        best = max(load) if best is None else min(best, max(load))
    return best


@settings(max_examples=80, deadline=None)
@given(cyc=st.lists(st.integers(0, 60), min_size=1, max_size=7), bins=st.integers(1, 4))
def test_lpt_within_grahams_bound_of_the_brute_force_optimum(cyc, bins):
    """LPT alone (not the simulator's better-of-two): OPT <= LPT <= (4/3 - 1/(3m)) OPT (Graham 1969)."""
    desc = np.sort(np.array(cyc, dtype=np.int64))[::-1].copy()
    got = int(lpt_span(desc, bins))
    opt = _optimal_assignment(cyc, bins)
    assert opt <= got
    assert 3 * bins * got <= (4 * bins - 1) * opt  # got <= (4/3 - 1/(3 bins)) * opt, in integers


@pytest.mark.parametrize("m", [2, 3, 4])
def test_lpt_meets_grahams_worst_case_exactly(m):
    """Graham's tight instance 2m-1, 2m-1, 2m-2, 2m-2, ..., m+1, m+1, m, m, m: LPT takes 4m-1
    where the optimum is 3m (any other rule -- optimal, round-robin, a constant -- gives another value)."""
    jobs = [x for k in range(2 * m - 1, m, -1) for x in (k, k)] + [m, m, m]
    assert int(lpt_span(np.array(sorted(jobs, reverse=True), dtype=np.int64), m)) == 4 * m - 1
    assert _optimal_assignment(jobs, m) == 3 * m


@settings(max_examples=60, deadline=None)
@given(cyc=st.lists(st.integers(0, 60), min_size=1, max_size=6), tiles=st.integers(1, 30),
       arrays=st.sampled_from([1, 2, 3, 4, 6]))
def test_makespan_within_4_3_of_the_brute_force_best_split(cyc, tiles, arrays):
    """The simulator's compute time of a kernel-block run against the brute-force best over every
    a_t x a_g = A split and every assignment of the groups to the a_g columns."""
    cyc = np.array(cyc, dtype=np.int64)
    divisors = [d for d in range(1, arrays + 1) if arrays % d == 0]
    got = array_makespan(cyc, tiles, arrays, divisors)
    opt = min(-(-tiles // (arrays // a_g)) * _optimal_assignment(cyc.tolist(), a_g)
              for a_g in divisors if a_g == 1 or a_g <= cyc.size)
    assert opt <= got <= opt * 4 / 3
    # and never worse than dealing the groups round-robin over the best split
    rr = min(-(-tiles // (arrays // a_g)) * max(int(cyc[k::a_g].sum()) for k in range(a_g))
             for a_g in divisors if a_g == 1 or a_g <= cyc.size)
    assert got <= rr


def test_prune_scope_is_checked_and_offered_by_the_clis(capsys):
    assert PRUNE_SCOPES == ("layer", "kernel")
    with pytest.raises(UnknownNameError):
        resolve_kernels(get_network("vgg16"), None, prune_scope="global")
    for cmd in (["simulate", "vgg16", "--device", "u200"], ["run"]):
        with pytest.raises(SystemExit) as exc:
            main(cmd + ["--prune-scope", "bogus"])
        assert exc.value.code == 2
        assert "--prune-scope" in capsys.readouterr().err
