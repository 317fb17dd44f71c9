"""Kernels pruned for a bank map carry it, and the accelerator schedules them with it.

Reference: the busiest-PE / busiest-bank lower bound of every kernel group, counted here from the
masks and the map (no scheduler involved); bank-friendly masks are built by the projection
(``prune.bank_balanced_mask``) from the shipped hardware-aware fmnist_vgg kernels.
"""

import dataclasses

import numpy as np
import pytest

from flexspec.accel.arch import AcceleratorConfig
from flexspec.accel.grouping import ScheduleCache, schedule_layer_blocks
from flexspec.accel.sim import simulate_network
from flexspec.errors import InputFileError, UsageError
from flexspec.pipeline import bank_map_notes
from flexspec.schedule.model import bank_map
from flexspec.spectral import real_model as rm
from flexspec.spectral.prune import bank_balanced_mask
from flexspec.spectral.sparse import SparseNetworkKernels, SparseSpectralKernels
from flexspec.workload.zoo import get_network

PES, BANKS, PORTS = 16, 16, 1
CONFIG = AcceleratorConfig(arrays=1, pes=PES, banks=BANKS, ports=PORTS, fft_engines=1, ifft_engines=1)
LAYERS = ("conv2_2", "conv3_1")  # 32 x 32 kernels: two groups of 16 per input channel


@pytest.fixture(scope="module")
def bank_friendly():
    """(shipped per-kernel kernels, the same re-projected onto bank-capped masks with their maps)."""
    shipped = rm.load_pruned("admm_hw", 0.25)  # per-kernel counts (and its own maps, dropped here)
    start = dataclasses.replace(shipped, bank_maps={}, bank_map_banks=0)
    layers, maps = dict(start.layers), {}
    for name in LAYERS:
        ssk = start.layers[name]
        maps[name] = bank_map(ssk.mask(), BANKS, "auto")
        keep = bank_balanced_mask(ssk.dense(), 0.25, maps[name], BANKS, PES, PORTS)
        layers[name] = SparseSpectralKernels.from_dense(ssk.dense(), keep, ssk.kernel_size)
    friendly = SparseNetworkKernels(start.network, start.fft_size, layers, start.provenance + "; bank test",
                                    True, start.biases, start.params, "admm_hw", 0.25, maps, BANKS)
    return start, friendly


def group_lower_bound(sched, ports: int) -> np.ndarray:
    """Per kernel group: max(entries of its busiest PE, ceil(reads of its busiest bank / R))."""
    s = sched.schedule
    pe_load = np.zeros((s.num_groups, s.num_pes), dtype=np.int64)
    np.add.at(pe_load, (s.group, s.pe), 1)
    bank_reads = np.zeros((s.num_groups, int(s.bank_of.max()) + 1), dtype=np.int64)
    np.add.at(bank_reads, (s.group, s.bank_of[s.index]), 1)
    return np.maximum(pe_load.max(axis=1), -(-bank_reads.max(axis=1) // ports))


def test_kernels_keep_their_bank_maps_through_a_file(tmp_path, bank_friendly):
    _, friendly = bank_friendly
    path = friendly.save(tmp_path / "bank.npz")
    back = SparseNetworkKernels.load(path)
    assert back.equals(friendly) and back.bank_map_banks == BANKS
    assert np.array_equal(back.bank_map("conv2_2", BANKS), friendly.bank_maps["conv2_2"])
    assert back.bank_map("conv2_2", 20) == "auto" and back.bank_map("conv1_1", BANKS) == "auto"
    # a file without maps (every earlier kernel file) loads with none
    assert SparseNetworkKernels.load(rm.pruned_file("admm", 0.25)).bank_maps == {}
    # the shipped hardware-aware models carry the 16-bank maps they were pruned for
    assert rm.load_pruned("admm_hw", 0.25).bank_map_banks == BANKS


def test_bad_bank_maps_are_refused(tmp_path, bank_friendly):
    start, friendly = bank_friendly
    args = (start.network, start.fft_size, start.layers, "x", True, start.biases, start.params, "admm_hw", 0.25)
    f = start.layers["conv2_2"].num_frequencies
    with pytest.raises(UsageError, match="bank map for unknown layer 'nope'"):
        SparseNetworkKernels(*args, {"nope": np.zeros(f, np.int64)}, BANKS)
    with pytest.raises(UsageError, match=r"bank map of 'conv2_2' must hold 40 integer banks in 0\.\.15"):
        SparseNetworkKernels(*args, {"conv2_2": np.full(f, BANKS, np.int64)}, BANKS)
    with pytest.raises(UsageError, match="bank maps need their bank count"):
        SparseNetworkKernels(*args, {"conv2_2": np.zeros(f, np.int64)}, 0)
    # a damaged map in a file: the file and the reason are named
    path = friendly.save(tmp_path / "bank.npz")
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["bank_map/conv2_2"] = arrays["bank_map/conv2_2"][:-1]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputFileError, match="bad.npz.*bank map of 'conv2_2'"):
        SparseNetworkKernels.load(tmp_path / "bad.npz")


def test_schedules_use_the_map_the_kernels_were_pruned_for(bank_friendly):
    _, friendly = bank_friendly
    cache = ScheduleCache()
    assert cache.use_bank_maps(friendly) == len(LAYERS)
    for name in LAYERS:
        mask = friendly.layers[name].mask()
        with_map = cache.get(mask, CONFIG, mask.shape[0])
        assert np.array_equal(with_map.schedule.bank_of, friendly.bank_maps[name])
        # the projection capped the banks of a group near what a PE holds (10 entries; 11 where
        # the group's magnitudes did not allow 10): the conflict-free schedules reach each group's
        # lower bound, and the PEs do useful work >= 90% of the cycles
        bound = group_lower_bound(with_map, PORTS)
        assert np.array_equal(with_map.cycles.ravel(), bound)
        assert bound.max() <= 11 and with_map.pe_bound.sum() / bound.sum() >= 0.9
        # the scheduler's own map of the same masks leaves the busiest bank as the bound more often
        own = schedule_layer_blocks(mask, CONFIG, mask.shape[0])
        assert own.cycles.sum() > with_map.cycles.sum() * 1.1
        # another bank count: the kernels' map does not apply, the scheduler builds its own
        other = cache.get(mask, AcceleratorConfig(arrays=1, pes=PES, banks=20, ports=PORTS), mask.shape[0])
        assert np.array_equal(other.schedule.bank_of, bank_map(mask, 20, "auto"))


def test_simulation_and_run_notes_follow_the_kernels_maps(bank_friendly):
    start, friendly = bank_friendly
    net = get_network(rm.NAME)
    plain = SparseNetworkKernels(friendly.network, friendly.fft_size, friendly.layers, "no maps", True,
                                 friendly.biases, friendly.params, "admm_hw", 0.25)
    with_maps = simulate_network(net, "u200", CONFIG, friendly, histograms=False)
    without = simulate_network(net, "u200", CONFIG, plain, histograms=False)
    by = {r.name: r for r in with_maps.layers}
    ref = {r.name: r for r in without.layers}
    for name in LAYERS:
        assert by[name].cycles < ref[name].cycles
        assert by[name].stored_kernel_bytes < ref[name].stored_kernel_bytes  # a shorter schedule stream
    for name in set(by) - set(LAYERS):  # layers without a map are scheduled exactly as before
        assert by[name].cycles == ref[name].cycles
    assert "scheduled with the bank map they were pruned for (16 banks)" in bank_map_notes(friendly, CONFIG, 2)[0]
    assert "--banks 16" in bank_map_notes(friendly, AcceleratorConfig(banks=20, pes=PES), 2)[0]
    assert bank_map_notes(start, CONFIG, 0) == []
