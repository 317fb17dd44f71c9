"""Fashion-MNIST loader and the shipped subset (tests/spectral: the data serves the spectral stage)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from flexspec import datasets
from flexspec.errors import InputFileError

full = pytest.mark.skipif(not datasets.fashion_mnist_available(),
                          reason="full Fashion-MNIST absent: apt-get install -y dataset-fashion-mnist")


def test_shipped_subset_is_real_fashion_mnist_test_data():
    images, labels = datasets.fashion_mnist_subset()
    assert images.shape == (1000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (1000,) and set(np.unique(labels)) == set(range(10))
    # the first ten official t10k labels
    assert labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert 0.25 < images.mean() / 255 < 0.32 and images.max() == 255
    x = datasets.to_float(images[:5])
    assert x.shape == (5, 1, 28, 28) and x.dtype == np.float32


@full
def test_full_set_and_subset_agree():
    images, labels = datasets.fashion_mnist("test")
    assert images.shape == (10000, 28, 28)
    sub_images, sub_labels = datasets.fashion_mnist_subset()
    assert np.array_equal(images[:1000], sub_images) and np.array_equal(labels[:1000], sub_labels)
    train_images, train_labels = datasets.fashion_mnist("train")
    assert train_images.shape == (60000, 28, 28) and np.bincount(train_labels).tolist() == [6000] * 10
    assert abs(train_images.mean() / 255 - datasets.MEAN) < 1e-3


def test_missing_set_says_how_to_install(tmp_path):
    assert not datasets.fashion_mnist_available(tmp_path)
    with pytest.raises(datasets.DatasetMissingError, match="apt-get install -y dataset-fashion-mnist"):
        datasets.fashion_mnist("train", root=tmp_path)


def _write_idx(path, magic, dims, payload):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    with gzip.open(path, "wb") as fh:
        fh.write(header + payload)


def test_idx_reader_and_bad_files(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", 0x0803, (3, 28, 28), imgs.tobytes())
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 0x0801, (3,), bytes([1, 2, 3]))
    monkeypatch.setenv(datasets.ROOT_ENV, str(tmp_path))
    images, labels = datasets.fashion_mnist("test")
    assert np.array_equal(images, imgs) and labels.tolist() == [1, 2, 3]
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 0x0803, (3,), bytes([1, 2, 3]))
    with pytest.raises(InputFileError, match="magic"):
        datasets.fashion_mnist("test")
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 0x0801, (4,), bytes([1, 2, 3]))
    with pytest.raises(InputFileError, match="data"):
        datasets.fashion_mnist("test")
    with pytest.raises(Exception, match="split"):
        datasets.fashion_mnist("valid")
