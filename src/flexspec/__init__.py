"""FlexSpec: compile a CNN into a low-latency spectral sparse FPGA accelerator and prove it by simulation."""

from __future__ import annotations

__version__ = "0.1.0"

#: Version of every file format FlexSpec writes (report.json, schedules, sparse kernels).
FORMAT_VERSION = 1

__all__ = ["__version__", "FORMAT_VERSION", "run", "RunReport"]


def __getattr__(name):
    """``flexspec.run`` / ``flexspec.RunReport`` load the pipeline on first use (importing flexspec stays light)."""
    if name in ("run", "RunReport"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'flexspec' has no attribute {name!r}")
