"""Atomic, all-or-nothing output, the one way FlexSpec writes files: they appear whole or not at all.

* :func:`check_output_folder` runs *before* the long computation: the folder (or the nearest
  existing folder above it) must be a writable directory, else :class:`OutputError`.
* :func:`write_files` takes every file's content already rendered in memory, writes each to a
  temporary file in the output folder, and only when all of them are written renames them into
  place (``os.replace``); on any failure the temporary files (and a folder it created) are removed.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import FlexSpecError


class OutputError(FlexSpecError):
    """The output folder cannot be created or written (exit code 1)."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    return p


def check_output_folder(folder) -> Path:
    """The absolute output folder, after checking that it is (or can become) a writable folder.

    Creates nothing."""
    path = Path(os.path.abspath(os.fspath(folder)))
    if path.exists() and not path.is_dir():
        raise OutputError(f"output folder '{folder}' exists and is not a folder; choose another --out")
    base = _nearest_existing(path)
    if not base.is_dir():
        raise OutputError(f"cannot create output folder '{folder}': '{base}' is a file, not a folder; "
                          f"choose another --out")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write in '{base}' (permission denied); choose another --out")
    return path


def write_files(folder, files: dict) -> list[Path]:
    """Write ``{name: str | bytes}`` into ``folder`` all-or-nothing; returns the final paths."""
    folder = check_output_folder(folder)
    created = []
    p = folder
    while not p.exists():
        created.append(p)
        p = p.parent
    temps: list[tuple[str, Path]] = []
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create output folder '{folder}': {exc.strerror or exc}") from None
        for name, content in files.items():
            data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
            try:
                fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
                temps.append((tmp, folder / name))
                os.chmod(tmp, 0o666 & ~_umask())
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as exc:
                raise OutputError(f"cannot write '{folder / name}': {exc.strerror or exc}") from None
        for tmp, final in temps:
            try:
                os.replace(tmp, final)
            except OSError as exc:
                raise OutputError(f"cannot write '{final}': {exc.strerror or exc}") from None
        return [final for _, final in temps]
    except BaseException:
        for tmp, _ in temps:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        for p in created:  # innermost first; only folders this call made, and only if empty
            try:
                p.rmdir()
            except OSError:
                break
        raise


def write_file(path, content) -> Path:
    """One file, atomically (temporary file in the same folder, then ``os.replace``)."""
    path = Path(os.path.abspath(os.fspath(path)))
    if path.is_dir():
        raise OutputError(f"'{path}' is a folder; give a file name")
    return write_files(path.parent, {path.name: content})[0]


def save_npz(path, arrays: dict, compressed: bool = False) -> Path:
    """``np.savez`` (or ``savez_compressed``) of ``arrays`` to ``path``, atomically."""
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return write_file(path, buf.getvalue())
