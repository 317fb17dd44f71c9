"""FlexSpec: compile a CNN into a low-latency spectral sparse FPGA accelerator and prove it by simulation."""

from __future__ import annotations

__version__ = "0.1.0"

#: Version of every file format FlexSpec writes (report.json, schedules, sparse kernels).
FORMAT_VERSION = 1

__all__ = ["__version__", "FORMAT_VERSION"]
