"""A content-addressed disk cache shared by the workers of one machine.

``Store(root).get_or_compute(kind, key, compute, encode, decode)`` returns the value stored
under ``root/kind/key.npz``, or computes it under an exclusive file lock (``fcntl.flock`` on
``root/locks/kind-key.lock``: a second worker asking for the same key waits for the first and
reads its result, so nothing is computed twice on one machine) and writes it atomically
(:func:`flexspec.fileio.save_npz`: a reader sees the whole file or none).  Keys are digests of
everything the value depends on, including :func:`code_fingerprint` (a digest of FlexSpec's own
source), so a stale entry is never read after the code changes.  An unreadable entry (a disk
that filled up, a file edited by hand) is recomputed and replaced.

The cache changes no result, only the time; a worker that cannot write ``root`` computes
without it.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..accel.kernels import cache_dir
from ..fileio import save_npz

#: In-process memo of recently read entries per kind (values are reused by consecutive points).
MEMO_ENTRIES = {"kernels": 2, "schedules": 256, "accuracy": 16}
_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def default_cache_dir() -> Path | None:
    """The ``explore`` folder of FlexSpec's cache folder (:func:`flexspec.accel.kernels.cache_dir`:
    ``$FLEXSPEC_CACHE_DIR``, else ``$XDG_CACHE_HOME/flexspec`` or ``~/.cache/flexspec``); None when
    the cache is off (``FLEXSPEC_CACHE_DIR=off``)."""
    root = cache_dir()
    return None if root is None else root.expanduser() / "explore"


_FINGERPRINT: str | None = None


def code_fingerprint() -> str:
    """sha256 (16 hex digits) over the source of every FlexSpec module: cached values are keyed by
    the code that computed them."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        h = hashlib.sha256()
        for path in sorted(_PACKAGE_DIR.rglob("*.py")):
            h.update(str(path.relative_to(_PACKAGE_DIR)).encode())
            h.update(path.read_bytes())
        _FINGERPRINT = h.hexdigest()[:16]
    return _FINGERPRINT


class Store:
    """See the module docstring.  ``hits`` / ``misses`` count this process's lookups."""

    def __init__(self, root):
        self.root = Path(root).expanduser().resolve()
        self.code = code_fingerprint()
        self.hits = 0
        self.misses = 0
        self._memo: dict[str, OrderedDict] = {}
        self.writable = True
        try:
            for sub in ("locks",):
                (self.root / sub).mkdir(parents=True, exist_ok=True)
        except OSError:
            self.writable = False

    def path(self, kind: str, key: str) -> Path:
        return self.root / kind / f"{key}.npz"

    def _read(self, kind, key, decode):
        path = self.path(kind, key)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return (decode(data),)
        except Exception:  # noqa: BLE001 - an unreadable entry is recomputed
            return None

    def _remember(self, kind, key, value):
        memo = self._memo.setdefault(kind, OrderedDict())
        memo[key] = value
        memo.move_to_end(key)
        while len(memo) > MEMO_ENTRIES.get(kind, 8):
            memo.popitem(last=False)

    def get_or_compute(self, kind: str, key: str, compute, encode, decode):
        """(value, hit): hit is True when the value was computed earlier (by any process)."""
        memo = self._memo.get(kind)
        if memo is not None and key in memo:
            memo.move_to_end(key)
            self.hits += 1
            return memo[key], True
        if not self.writable:
            self.misses += 1
            return compute(), False
        got = self._read(kind, key, decode)
        if got is None:
            lock = self.root / "locks" / f"{kind}-{key}.lock"
            with open(lock, "a+") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    got = self._read(kind, key, decode)  # another worker may have finished it meanwhile
                    if got is None:
                        value = compute()
                        try:
                            (self.root / kind).mkdir(parents=True, exist_ok=True)
                            save_npz(self.path(kind, key), encode(value))
                        except Exception:  # noqa: BLE001 - a full disk costs time, not the result
                            pass
                        self.misses += 1
                        self._remember(kind, key, value)
                        return value, False
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
        self.hits += 1
        self._remember(kind, key, got[0])
        return got[0], True


_STORES: dict[str, Store] = {}


def store_at(root) -> Store | None:
    """The process's Store for ``root`` (one per folder and process, so its memo is reused by the
    points a worker runs one after another); None for no cache."""
    if root is None:
        return None
    key = str(root)
    if key not in _STORES:
        _STORES[key] = Store(root)
    return _STORES[key]
