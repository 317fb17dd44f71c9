"""The results of an exploration: ``DIR/points.csv``, one row per point, appended as each finishes.

Durability:

* the exploring process is the only writer (an exclusive ``flock`` on ``DIR/.lock``; a second
  exploration of the same folder stops with an error instead of interleaving rows);
* each row is one ``write`` of one complete line, flushed and ``fsync``-ed before the next
  point is counted as done: a crash, a Ctrl-C or a killed worker loses no finished point;
* a line cut short by a crash in the middle of a write (no final newline) is ignored when the
  file is read back and cut off before the next append; earlier rows are never rewritten;
* a point already in the file is never appended again (resume); only a point recorded as failed
  and computed again on request (``--retry-failed``), or a pruned point screened again under
  other objectives, gets a second row, which replaces the first when the file is read.

``DIR/points.parquet`` is a typed snapshot of the same rows for analysis tools (pyarrow),
rewritten atomically at the end of each run.
"""

from __future__ import annotations

import csv
import fcntl
import io
import math
import os
from pathlib import Path

from ..errors import UsageError
from ..fileio import write_file

#: column -> type ('str' | 'int' | 'float' | 'bool'), in file order
COLUMNS = {
    "point_id": "str", "status": "str", "error": "str",
    "model": "str", "device": "str", "fft_size": "int", "density_requested_fraction": "float",
    "prune_scope": "str", "seed": "int", "arrays_requested": "str", "pes": "int", "banks": "int", "ports": "int",
    "broadcast": "bool",
    "arrays": "int", "fft_engines": "int", "density_used_fraction": "float", "weights": "str",
    "lut_used_count": "int", "ff_used_count": "int", "lutram_luts_used_count": "int", "dsp_used_count": "int",
    "bram_bits_used": "int", "uram_bits_used": "int", "binding_resource": "str",
    "accuracy_fraction": "float",
    "cycles_lower_bound": "float", "latency_lower_bound_seconds": "float", "traffic_lower_bound_bytes": "float",
    "conv_latency_lower_bound_seconds": "float",
    "cycles": "int", "latency_seconds": "float", "throughput_per_second": "float", "traffic_bytes": "float",
    "conv_cycles": "int", "conv_latency_seconds": "float", "conv_traffic_bytes": "float",
    "dsp_efficiency_fraction": "float", "roofline_cycles": "int",
    "pruned_by": "str", "screen_signature": "str",
    "kernel_cache": "str", "schedule_cache_hits": "int", "schedule_cache_misses": "int",
    "simulate_seconds": "float", "worker": "str", "run_id": "str", "finished_utc": "str",
    "flexspec_version": "str", "code_fingerprint": "str", "reproduce": "str",
}
STATUSES = ("ok", "failed", "pruned", "does-not-fit", "invalid")
FILE = "points.csv"
PARQUET = "points.parquet"


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return " ".join(str(value).split())  # one line, whatever the error message held


def _parse(kind: str, text: str):
    if text == "":
        return None
    if kind == "int":
        return int(float(text))
    if kind == "float":
        return float(text)
    if kind == "bool":
        return text == "true"
    return text


class Journal:
    """``DIR/points.csv``; open with ``with Journal(folder) as j:`` (takes the folder's lock)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.path = self.folder / FILE
        self._lock = None
        self.rows: dict[str, dict] = {}
        self.torn_bytes = 0

    def __enter__(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.folder / ".lock", "a+")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            self._lock = None
            raise UsageError(f"another exploration is writing '{self.folder}'; wait for it or choose another "
                             f"--out") from None
        self._load()
        return self

    def __exit__(self, *exc):
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None
        return False

    def _load(self) -> None:
        if not self.path.exists():
            with open(self.path, "x", newline="") as fh:
                fh.write(",".join(COLUMNS) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        self.torn_bytes = len(data) - end
        if self.torn_bytes:  # a line cut short by a crash: drop it before appending
            with open(self.path, "r+b") as fh:
                fh.truncate(end)
                fh.flush()
                os.fsync(fh.fileno())
        header, rows = _rows_of(data[:end])
        if header != list(COLUMNS):
            raise UsageError(f"'{self.path}' was not written by this version of 'flexspec explore' (its columns "
                             f"differ); choose another --out")
        for row in rows:
            self.rows[row["point_id"]] = row  # a retried point's later row replaces its failed one

    def append(self, row: dict) -> None:
        """Append one finished point (durably; a point already present is not written again)."""
        if row["point_id"] in self.rows:
            return
        line = render_rows([row], header=False).encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.rows[row["point_id"]] = {k: row.get(k) for k in COLUMNS}

    def write_parquet(self) -> Path:
        """The rows as a typed Parquet file (atomically)."""
        import pyarrow as pa  # optional dependency (the 'explore' extra)
        import pyarrow.parquet as pq

        types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
        rows = list(self.rows.values())
        table = pa.table({k: pa.array([r.get(k) for r in rows], type=types[t]) for k, t in COLUMNS.items()})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        return write_file(self.folder / PARQUET, sink.getvalue().to_pybytes())


def render_rows(rows, header: bool = True) -> str:
    """CSV text of ``rows`` in the journal's columns (with the header line unless told)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(list(COLUMNS))
    for row in rows:
        w.writerow([_cell(row.get(k)) for k in COLUMNS])
    return buf.getvalue()


def _rows_of(data: bytes) -> tuple[list | None, list[dict]]:
    """(header, rows) of complete CSV lines."""
    reader = csv.reader(io.StringIO(data.decode("utf-8", errors="replace")))
    header = next(reader, None)
    rows = [{k: _parse(t, v) for (k, t), v in zip(COLUMNS.items(), cells, strict=True)}
            for cells in reader if len(cells) == len(COLUMNS)]
    return header, rows


def read_rows(folder) -> list[dict]:
    """Every complete row of ``DIR/points.csv``, duplicates included (read-only; no lock)."""
    path = Path(folder) / FILE
    if not path.exists():
        return []
    data = path.read_bytes()
    return _rows_of(data[:data.rfind(b"\n") + 1])[1]
