"""Front doors for saved models: one function from a file to a Network (with its weights).

``.onnx``: :func:`flexspec.workload.onnx_import.load_onnx` (needs ``onnx``); ``.pt2``: a
``torch.export.save`` program (:func:`flexspec.workload.torch_import.load_exported`).  Any other
file gets one error naming the accepted formats.
"""

from __future__ import annotations

import os

from ..errors import InputFileError
from .onnx_import import load_onnx  # imports onnx itself only when a file is read
from .torch_import import load_exported  # imports torch itself only when a file is read

FORMATS = {".onnx": "ONNX model", ".pt2": "torch.export program (torch.export.save)"}
ACCEPTED = ", ".join(f"{ext} ({what})" for ext, what in FORMATS.items())


def is_model_file(text) -> bool:
    """True when ``text`` names a file (a path with a folder part or an extension), not a built-in name."""
    s = str(text)
    return os.path.splitext(s)[1] != "" or os.sep in s or os.path.exists(s)


def check_model_file(path) -> str:
    """The extension of a model file that exists and has an accepted format; InputFileError otherwise."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise InputFileError(path, f"unknown model format '{ext or '(none)'}'; accepted model files are {ACCEPTED}")
    if not os.path.isfile(path):
        raise InputFileError(path, "no such file")
    return ext


def load_model(path, name: str | None = None):
    """The Network of a saved model file, by its extension."""
    path = os.fspath(path)
    ext = check_model_file(path)
    if ext == ".onnx":
        return load_onnx(path, name)
    return load_exported(path, name)
