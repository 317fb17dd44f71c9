"""One formula for stored kernel bits: the sparse file, the dataflow and the simulator agree, the
simulator honours a file's widths, the schedule stream is what the generated RTL's schedule memory
holds, twins once."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.grouping import stored_stream_bits
from flexspec.accel.sim import ScheduleCache, compare, precision_of, simulate_network
from flexspec.dataflow import LayerModel, Precision, kernel_bits
from flexspec.errors import UsageError
from flexspec.kernel_format import DEFAULT_ACC_BITS, KernelFormat, psum_bits, schedule_stream_bits, spread_over_kernels
from flexspec.rtl.config import PEArrayConfig
from flexspec.rtl.source import RTLOptions, layer_case
from flexspec.spectral import real_model
from flexspec.spectral.sparse import SparseNetworkKernels, twin_once_counts
from flexspec.workload.zoo import get_network

CFG = AcceleratorConfig(arrays=2, pes=8, banks=20, ports=2, fft_engines=4, ifft_engines=4, fifo_channels=64)


def _rewidth(net_k: SparseNetworkKernels, value_bits: int, index_bits: int) -> SparseNetworkKernels:
    """The same kernels declared at other widths (accounting only: the values are not requantized)."""
    layers = {name: replace(k, value_bits=value_bits, index_bits=index_bits) for name, k in net_k.layers.items()}
    return replace(net_k, layers=layers)


@pytest.fixture(scope="module")
def shipped():
    return get_network("fmnist_vgg"), real_model.load_pruned("admm", 0.25)


@pytest.mark.parametrize("value_bits, index_bits", [(16, 6), (8, 8)])
def test_file_dataflow_and_simulator_count_the_same_kernel_bits(shipped, value_bits, index_bits):
    """The sparse file's count, the dataflow's count (through the simulator's precision) and the
    bytes the simulator moves (kernel reuse reads every kernel exactly once) are nnz x (2 x
    value_bits + index_bits), counted here by hand -- at 16 and at 8 bits."""
    net, net_k = shipped
    net_k = _rewidth(net_k, value_bits, index_bits)
    prec = precision_of(CFG, net_k)
    r = compare(net, "zcu102", CFG, net_k, histograms=False, kernel_storage="entries").baselines["kernel-reuse"]
    for name, k in net_k.layers.items():
        mask = k.mask()
        by_hand = mask.sum(axis=2).astype(np.int64) * (2 * value_bits + index_bits)
        assert np.array_equal(k.kernel_bits(), by_hand)
        assert np.array_equal(LayerModel(net.layer(name), mask, 8, prec).kbits, by_hand)
        assert np.array_equal(kernel_bits(mask.sum(axis=2), 8, prec), by_hand)
        assert r.layer(name).kernels_bytes * 8 == int(by_hand.sum()) == k.total_bits()


def test_the_simulator_honours_the_kernel_files_widths(shipped):
    """Before: the simulator counted every file at the design's 16-bit values and 6-bit indices."""
    net, net_k = shipped
    assert precision_of(CFG).kernel_format == KernelFormat(16)
    assert precision_of(CFG, _rewidth(net_k, 8, 8)).kernel_format == KernelFormat(8, 8)
    mixed = dict(net_k.layers)
    first = next(iter(mixed))
    mixed[first] = replace(mixed[first], value_bits=8)
    with pytest.raises(UsageError, match="different widths"):
        precision_of(CFG, replace(net_k, layers=mixed))


def test_partial_sums_are_the_two_48_bit_accumulators():
    """One width for a complex partial sum everywhere: the dataflow's default, the simulator's and
    the RTL's accumulators (2 x acc_bits)."""
    rtl = PEArrayConfig(4, 4, 1, 8, [f % 4 for f in range(40)], 8)
    assert DEFAULT_ACC_BITS == AcceleratorConfig().acc_bits == rtl.acc_bits == 48
    assert Precision().psum_bits == precision_of(AcceleratorConfig()).psum_bits == psum_bits() == 2 * rtl.acc_bits


@pytest.mark.parametrize("pes, banks, ports, broadcast, layer", [(4, 4, 1, False, "conv1_2"),
                                                                   (8, 20, 2, True, "conv2_1")])
def test_stored_stream_is_what_the_generated_schedule_memory_holds(pes, banks, ports, broadcast, layer):
    """A real layer's stored stream as the simulator counts it = the words of the program that
    ``flexspec rtl`` builds for the layer x the width of the schedule memory of the elaborated
    Amaranth PE array (both independent of kernel_format)."""
    pytest.importorskip("amaranth", reason="the generated RTL needs amaranth (extra 'rtl')")
    from flexspec.rtl.pe_array import SparsePEArray  # amaranth: heavy optional dependency

    case = layer_case(layer, RTLOptions(num_pes=pes, num_banks=banks, ports=ports, broadcast=broadcast))
    width = SparsePEArray(case.pe_config).elaborate(None).submodules["schedule"].shape.width
    cfg = AcceleratorConfig(arrays=1, pes=pes, banks=banks, ports=ports, broadcast=broadcast)
    stored = stored_stream_bits(case.mask, cfg, case.mask.shape[0], ScheduleCache())
    assert int(stored.sum()) == len(case.program.words) * width
    assert int(schedule_stream_bits(case.program.group_cycles, case.pe_config).sum()) == len(case.program.words) * width
    entries = int(kernel_bits(case.mask, 8).sum())
    assert entries == int(case.mask.sum()) * 38 < int(stored.sum())  # the stream is larger than the packed entries


@settings(max_examples=40, deadline=None)
@given(groups=st.integers(1, 6), pes=st.integers(1, 5), kernels=st.integers(1, 40), seed=st.integers(0, 999))
def test_spread_over_kernels_keeps_every_bit_of_every_group(groups, pes, kernels, seed):
    rng = np.random.default_rng(seed)
    ids = np.full((groups, pes), -1)
    slots = rng.permutation(groups * pes)[:min(kernels, groups * pes)]
    ids.flat[slots] = np.arange(slots.size)
    bits = np.where((ids >= 0).any(axis=1), rng.integers(0, 10_000, groups), 0)
    out = spread_over_kernels(ids, bits, kernels)
    for g in range(groups):  # each group's bits land on its own kernels, within one bit-share of even
        mine = ids[g][ids[g] >= 0]
        assert out[mine].sum() == bits[g]
        if mine.size:
            assert out[mine].max() - out[mine].min() <= bits[g] % mine.size
    assert out.sum() == bits.sum() and out[slots.size:].sum() == 0


def test_the_simulator_moves_a_stored_schedule_stream(shipped):
    """Kernels stored as their schedule stream: kernel reuse moves exactly the stream's bits."""
    net, net_k = shipped
    cache = ScheduleCache()
    stored = {name: stored_stream_bits(k.mask(), CFG, k.out_channels, cache) for name, k in net_k.layers.items()}
    r = compare(net, "zcu102", CFG, net_k, histograms=False, schedules=cache, stored_kernel_bits=stored)
    for name, bits in stored.items():
        assert r.baselines["kernel-reuse"].layer(name).kernels_bytes * 8 == int(bits.sum())


def _twins_by_coordinates(mask_2d: np.ndarray, n: int) -> tuple[int, int]:
    """Brute force on (row, col) coordinates: kept entries left after dropping one of each kept
    conjugate pair in columns 0 and N/2, and kept self-conjugate bins."""
    m = n // 2 + 1
    dropped = real = 0
    for r in range(n):
        for c in range(m):
            if not mask_2d[r, c]:
                continue
            tr, tc = (-r) % n, (-c) % n
            if (tr, tc) == (r, c):
                real += 1
            elif tc < m and mask_2d[tr, tc] and (tr, tc) < (r, c):
                dropped += 1
    return int(mask_2d.sum()) - dropped, real


@settings(max_examples=40, deadline=None)
@given(n=st.sampled_from([4, 6, 8]), density=st.floats(0, 1), seed=st.integers(0, 999))
def test_twin_once_counts_match_coordinates(n, density, seed):
    m = n // 2 + 1
    mask = np.random.default_rng(seed).random((3, n * m)) < density
    stored, real = twin_once_counts(mask, n)
    for k in range(3):
        assert (stored[k], real[k]) == _twins_by_coordinates(mask[k].reshape(n, m), n)
    fmt = KernelFormat(twins="once")
    bits = kernel_bits(mask, n, Precision(kernel_format=fmt))
    assert np.array_equal(bits, stored * fmt.entry_bits(n) - real * 16)
    with pytest.raises(UsageError, match="masks"):
        kernel_bits(mask.sum(-1), n, Precision(kernel_format=fmt))


def test_simulated_kernel_bytes_are_the_generated_schedule_memory(shipped):
    """By default the simulator (and the dataflow it moves bytes for) counts each layer's kernels
    as the RTL stores them: one copy = the words of the program ``flexspec rtl`` builds for the
    layer x the width of the elaborated Amaranth schedule memory (layers whose run holds all
    output channels in one cout block, i.e. the program of the whole layer); the layer's kernel
    traffic is a whole number of copies."""
    pytest.importorskip("amaranth", reason="the generated RTL needs amaranth (extra 'rtl')")
    from flexspec.rtl.pe_array import SparsePEArray  # amaranth: heavy optional dependency

    net = shipped[0]
    opts = RTLOptions(num_pes=4, num_banks=4, ports=1)
    net_k = real_model.load_pruned(opts.prune_method, opts.density)  # the kernels flexspec rtl builds
    cfg = AcceleratorConfig(arrays=1, pes=4, banks=4, ports=1, fft_engines=4, ifft_engines=4)
    r = simulate_network(net, "zcu102", cfg, net_k, histograms=False)
    assert r.kernel_storage == "stream"
    checked = 0
    for lay in r.layers:
        if lay.kind != "spectral" or lay.cout_block < net.layer(lay.name).out_channels:
            continue
        case = layer_case(lay.name, opts)
        width = SparsePEArray(case.pe_config).elaborate(None).submodules["schedule"].shape.width
        assert lay.stored_kernel_bytes * 8 == len(case.program.words) * width, lay.name
        passes = lay.kernels_bytes / lay.stored_kernel_bytes
        assert passes >= 1 and passes == int(passes), lay.name
        checked += 1
    # how many layers run whole is the dataflow's choice (h12d: it ranks blockings by simulated cycles;
    # on this one-array design several layers take smaller blocks within 5% of the whole layer's time)
    assert checked >= 1, [(x.name, x.cout_block) for x in r.layers]
