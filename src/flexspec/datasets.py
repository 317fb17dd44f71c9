"""Real image data that works offline: Fashion-MNIST.

Two sources, both real images (Xiao, Rasul & Vollgraf 2017, MIT licence):

* the full set (60,000 train / 10,000 test), read from the files of the Debian package
  ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist/*.gz``, idx format), or from
  the folder named by the environment variable ``FLEXSPEC_FASHION_MNIST``;
* a subset that ships inside FlexSpec (``flexspec/data/fmnist_test1000.npz``): the first 1,000
  images of the official *test* split, so tests and the main job run with no install.

Images are uint8 ``[n, 28, 28]``, labels uint8 ``[n]``; :func:`to_float` normalizes them the
way the shipped model was trained.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from .errors import FlexSpecError, InputFileError, UsageError
from .fileio import save_npz

#: Where the Debian package ``dataset-fashion-mnist`` puts the files.
DEBIAN_ROOT = Path("/usr/share/datasets/fashion-mnist")
#: Environment variable that overrides the folder of the full set.
ROOT_ENV = "FLEXSPEC_FASHION_MNIST"

CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

#: Mean and standard deviation of the training images (pixel / 255), used by :func:`to_float`.
MEAN = 0.2860
STD = 0.3530

_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}

DATA_DIR = Path(__file__).resolve().parent / "data"
SUBSET_FILE = DATA_DIR / "fmnist_test1000.npz"


class DatasetMissingError(FlexSpecError):
    """The full Fashion-MNIST files are not installed."""


def fashion_mnist_root(root=None) -> Path:
    if root is not None:
        return Path(root)
    env = os.environ.get(ROOT_ENV)
    return Path(env) if env else DEBIAN_ROOT


def fashion_mnist_available(root=None) -> bool:
    """True when the full set (both splits) can be read from ``root`` (default: see module doc)."""
    folder = fashion_mnist_root(root)
    return all((folder / name).is_file() for pair in _FILES.values() for name in pair)


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise InputFileError(path, f"cannot read idx.gz file ({exc})") from None
    if len(raw) < 4 + 4 * ndim:
        raise InputFileError(path, "file too short for an idx header", "header")
    magic = int.from_bytes(raw[0:4], "big")
    if magic != 0x0800 + ndim:
        raise InputFileError(path, f"bad idx magic 0x{magic:08x}, expected 0x{0x0800 + ndim:08x}", "magic")
    dims = tuple(int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    offset = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(raw) - offset != count:
        raise InputFileError(path, f"expected {count} data bytes for shape {dims}, found {len(raw) - offset}",
                             "data")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims).copy()


def fashion_mnist(split: str = "test", root=None) -> tuple[np.ndarray, np.ndarray]:
    """The full Fashion-MNIST ``split`` ('train' or 'test') as (images uint8 [n,28,28], labels uint8 [n]).

    Raises DatasetMissingError (saying how to install it) when the files are absent.
    """
    if split not in _FILES:
        raise UsageError(f"Fashion-MNIST split must be 'train' or 'test', got {split!r}")
    folder = fashion_mnist_root(root)
    img_name, lab_name = _FILES[split]
    if not (folder / img_name).is_file() or not (folder / lab_name).is_file():
        raise DatasetMissingError(
            f"Fashion-MNIST files not found in {folder}; install them with "
            f"'apt-get update && apt-get install -y dataset-fashion-mnist' (Debian/Ubuntu), or set "
            f"{ROOT_ENV} to a folder holding {img_name} and {lab_name}. The shipped 1,000-image test "
            f"subset is available without install: flexspec.datasets.fashion_mnist_subset()"
        )
    images = _read_idx(folder / img_name, 3)
    labels = _read_idx(folder / lab_name, 1)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise InputFileError(folder / img_name, f"images {images.shape} do not match labels {labels.shape}",
                             "shape")
    return images, labels


def fashion_mnist_subset() -> tuple[np.ndarray, np.ndarray]:
    """The shipped subset: the first 1,000 official Fashion-MNIST *test* images and labels."""
    try:
        with np.load(SUBSET_FILE) as data:
            return data["images"].copy(), data["labels"].copy()
    except (OSError, KeyError, ValueError) as exc:
        raise InputFileError(SUBSET_FILE, f"shipped Fashion-MNIST subset unreadable ({exc}); reinstall flexspec",
                             None) from None


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 [n,28,28] -> float32 [n,1,28,28], normalized with the training mean and std."""
    x = np.asarray(images, dtype=np.float32) / 255.0
    return ((x - MEAN) / STD)[:, None, :, :]


def write_subset(path=SUBSET_FILE, count: int = 1000, root=None) -> Path:
    """Regenerate the shipped subset from the full test split (used by benchmarks/train_fmnist.py)."""
    images, labels = fashion_mnist("test", root)
    return save_npz(path, dict(images=images[:count], labels=labels[:count],
                               source=np.array("Fashion-MNIST t10k, first images, Debian dataset-fashion-mnist")),
                    compressed=True)
