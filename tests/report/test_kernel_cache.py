"""The on-disk cache of the synthesized VGG16 kernels: keyed by its inputs, atomic, relocatable, off-able."""

from __future__ import annotations

import pytest

from flexspec.accel import kernels as K
from flexspec.spectral import synth


@pytest.fixture
def counted(monkeypatch):
    """vgg16_kernels restricted to conv1_1 (fast), counting its calls."""
    calls = []
    real = synth.vgg16_kernels

    def fake(fft_size, density, seed, scope="layer"):
        calls.append((fft_size, density, seed, scope))
        return real(fft_size, density, seed, scope=scope, layers=["conv1_1"])

    monkeypatch.setattr(synth, "vgg16_kernels", fake)
    return calls


def test_second_call_loads_the_same_kernels(tmp_path, monkeypatch, counted):
    monkeypatch.setenv(K.CACHE_ENV, str(tmp_path / "cache"))
    a = K.cached_vgg16_kernels(8, 0.25, 0, "layer")
    files = list((tmp_path / "cache").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz" and len(counted) == 1
    b = K.cached_vgg16_kernels(8, 0.25, 0, "layer")
    assert len(counted) == 1 and b.equals(a)
    # every input is part of the key
    for args in ((8, 0.5, 0, "layer"), (8, 0.25, 1, "layer"), (8, 0.25, 0, "kernel"), (16, 0.25, 0, "layer")):
        K.cached_vgg16_kernels(*args)
    assert len(counted) == 5 and len(list((tmp_path / "cache").iterdir())) == 5


def test_damaged_entry_is_recomputed_and_replaced(tmp_path, monkeypatch, counted):
    monkeypatch.setenv(K.CACHE_ENV, str(tmp_path))
    a = K.cached_vgg16_kernels(8, 0.25, 0, "layer")
    (entry,) = tmp_path.glob("*.npz")
    entry.write_bytes(b"half a file")
    b = K.cached_vgg16_kernels(8, 0.25, 0, "layer")
    assert len(counted) == 2 and b.equals(a)
    assert K.cached_vgg16_kernels(8, 0.25, 0, "layer").equals(a) and len(counted) == 2


@pytest.mark.parametrize("off", ["off", "0", ""])
def test_cache_can_be_disabled(tmp_path, monkeypatch, counted, off):
    monkeypatch.setenv(K.CACHE_ENV, off)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    K.cached_vgg16_kernels(8, 0.25, 0, "layer")
    K.cached_vgg16_kernels(8, 0.25, 0, "layer")
    assert len(counted) == 2 and not any(tmp_path.iterdir())


def test_default_location_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.delenv(K.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert K.cache_dir() == tmp_path / "flexspec"


def test_fmnist_density_that_is_not_shipped_is_refused_not_snapped():
    from flexspec.errors import UsageError
    from flexspec.workload import get_network

    with pytest.raises(UsageError, match=r"ships trained kernels pruned to densities 0.5, 0.25, 0.125 only; asked 0.3"):
        K.resolve_kernels(get_network("fmnist_vgg"), None, density=0.3)
