"""Drive generated Verilog in Verilator (a compiled simulator) from Python.

Reusable for any generated block: :func:`build` compiles Verilog plus a C++ testbench into an
executable (cached by a hash of everything that goes into it), :func:`run` runs it.  Failures are
:class:`~flexspec.rtl.export.ToolError` carrying the tool's own message (Verilator's or the C++
compiler's), never a Python traceback.  :func:`stream_testbench_cpp` generates a harness for a
block with one valid/ready stream in and one out (ports ``i_valid/i_ready/i_data`` and
``o_valid/o_ready/o_data``, any widths), with seeded random input gaps and output back-pressure;
:func:`stream_cosim` builds, runs and parses it.

The generated C++ reads and writes beats as hexadecimal text (most significant digit first), so
ports of any width work (Verilator's ``VlWide`` words are handled by overloads).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import __file__ as _flexspec_init
from ..errors import UsageError
from .export import ToolError

#: Where builds are cached when no folder is given.
DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "flexspec-verilator"


def verilator_path() -> str | None:
    return shutil.which("verilator")


def verilator_available() -> bool:
    """Verilator and a C++ compiler are on PATH."""
    return verilator_path() is not None and (shutil.which("g++") or shutil.which("c++")) is not None


def require_verilator() -> str:
    """The verilator executable; ToolError naming what is missing otherwise."""
    exe = verilator_path()
    if exe is None:
        raise ToolError("verilator not found on PATH (Debian: apt-get install -y verilator)")
    if shutil.which("g++") is None and shutil.which("c++") is None:
        raise ToolError("verilator needs a C++ compiler (Debian: apt-get install -y g++)")
    return exe


def _tail(text: str, chars: int = 3000) -> str:
    text = (text or "").strip()
    return text if len(text) <= chars else "..." + text[-chars:]


def build(verilog_text: str, top: str, testbench_cpp: str, workdir=None, extra_args=(),
          timeout_seconds: float = 900) -> Path:
    """Compile ``verilog_text`` (top module ``top``) with ``testbench_cpp`` into an executable.

    Cached: the same inputs reuse the executable built before in ``workdir``."""
    exe = require_verilator()
    key = hashlib.sha256("\0".join([verilog_text, top, testbench_cpp, *extra_args]).encode()).hexdigest()[:16]
    folder = Path(workdir or DEFAULT_WORKDIR) / f"{top}-{key}"
    binary = folder / "obj" / f"V{top}_sim"
    if binary.is_file():
        return binary
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{top}.v").write_text(verilog_text)
    (folder / "tb.cpp").write_text(testbench_cpp)
    cmd = [exe, "--cc", "--exe", "--build", "-O2", "-Wno-fatal", "-Wno-lint", "-Wno-style",
           "--top-module", top, "-Mdir", str(folder / "obj"), "-o", binary.name,
           "-CFLAGS", "-O0", "-j", str(min(2, os.cpu_count() or 1)), *extra_args,
           str(folder / f"{top}.v"), str(folder / "tb.cpp")]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        raise ToolError(f"verilator build of {top} took more than {timeout_seconds:.0f} s") from None
    except OSError as exc:
        raise ToolError(f"cannot run verilator: {exc}") from None
    if proc.returncode != 0 or not binary.is_file():
        raise ToolError(f"verilator build of {top} failed: {_tail(proc.stderr or proc.stdout)}")
    return binary


def run(exe, args=(), timeout_seconds: float = 600) -> str:
    """Run a built testbench; its stdout.  A non-zero exit raises ToolError with its stderr."""
    try:
        proc = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=timeout_seconds)
    except subprocess.TimeoutExpired:
        raise ToolError(f"{Path(exe).name} ran longer than {timeout_seconds:.0f} s") from None
    except OSError as exc:
        raise ToolError(f"cannot run {exe}: {exc}") from None
    if proc.returncode != 0:
        raise ToolError(f"{Path(exe).name} failed (exit {proc.returncode}): {_tail(proc.stderr or proc.stdout)}")
    return proc.stdout


#: Overloads that move hex text into and out of Verilator ports of any width.
PORT_HELPERS_CPP = r"""
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>
#include "verilated.h"

static std::vector<uint32_t> words_of_hex(const std::string& h) {
    std::vector<uint32_t> w;
    for (long end = (long)h.size(); end > 0; end -= 8) {
        long start = end - 8 < 0 ? 0 : end - 8;
        w.push_back((uint32_t)std::stoul(h.substr(start, end - start), nullptr, 16));
    }
    return w;
}
static uint32_t word_at(const std::vector<uint32_t>& w, size_t i) { return i < w.size() ? w[i] : 0u; }
template <std::size_t W> static void set_port(VlWide<W>& p, const std::vector<uint32_t>& w) {
    for (std::size_t i = 0; i < W; i++) p[i] = word_at(w, i);
}
static void set_port(CData& p, const std::vector<uint32_t>& w) { p = (CData)word_at(w, 0); }
static void set_port(SData& p, const std::vector<uint32_t>& w) { p = (SData)word_at(w, 0); }
static void set_port(IData& p, const std::vector<uint32_t>& w) { p = word_at(w, 0); }
static void set_port(QData& p, const std::vector<uint32_t>& w) {
    p = (QData)word_at(w, 0) | ((QData)word_at(w, 1) << 32);
}
template <std::size_t W> static std::string hex_of(const VlWide<W>& p) {
    std::string s; char b[9];
    for (std::size_t i = W; i-- > 0;) { std::snprintf(b, sizeof b, "%08x", (unsigned)p[i]); s += b; }
    return s;
}
static std::string hex_of(QData p) { char b[17]; std::snprintf(b, sizeof b, "%016llx", (unsigned long long)p); return b; }
static std::string hex_of(IData p) { char b[9]; std::snprintf(b, sizeof b, "%08x", (unsigned)p); return b; }
static std::string hex_of(SData p) { char b[9]; std::snprintf(b, sizeof b, "%08x", (unsigned)p); return b; }
static std::string hex_of(CData p) { char b[9]; std::snprintf(b, sizeof b, "%08x", (unsigned)p); return b; }
"""


def stream_testbench_cpp(top: str) -> str:
    """C++ harness for a one-stream-in/one-stream-out block ``top``.

    Arguments of the executable: ``beats.hex expected_out_beats seed valid_percent ready_percent
    max_cycles``.  Each clock edge is numbered from 0 (the first edge after reset); it prints
    ``I <edge>`` for every accepted input beat and ``O <edge> <hex>`` for every output beat
    taken, and exits 3 if ``max_cycles`` pass before ``expected_out_beats`` were taken."""
    return PORT_HELPERS_CPP + f"""
#include <fstream>
#include <random>
#include "V{top}.h"

int main(int argc, char** argv) {{
    Verilated::commandArgs(argc, argv);
    if (argc < 7) {{ std::fprintf(stderr, "usage: %s beats.hex out_beats seed valid%% ready%% max_cycles\\n", argv[0]); return 2; }}
    std::vector<std::vector<uint32_t>> beats;
    {{
        std::ifstream in(argv[1]);
        if (!in) {{ std::fprintf(stderr, "cannot read %s\\n", argv[1]); return 2; }}
        std::string line;
        while (std::getline(in, line)) if (!line.empty()) beats.push_back(words_of_hex(line));
    }}
    const long want = std::atol(argv[2]);
    std::mt19937 rng((unsigned)std::atol(argv[3]));
    const unsigned pv = (unsigned)std::atol(argv[4]), pr = (unsigned)std::atol(argv[5]);
    const long max_cycles = std::atol(argv[6]);
    V{top}* top = new V{top};
    top->clk = 0; top->rst = 1; top->i_valid = 0; top->o_ready = 0; top->eval();
    for (int k = 0; k < 2; k++) {{ top->clk = 1; top->eval(); top->clk = 0; top->eval(); }}
    top->rst = 0; top->eval();
    std::size_t next = 0; long got = 0;
    for (long edge = 0; edge < max_cycles && got < want; edge++) {{
        const bool offer = next < beats.size() && (rng() % 100u) < pv;
        top->i_valid = offer;
        if (offer) set_port(top->i_data, beats[next]);
        top->o_ready = (rng() % 100u) < pr;
        top->clk = 0; top->eval();
        const bool take_in = offer && top->i_ready;
        if (top->o_valid && top->o_ready) {{
            std::printf("O %ld %s\\n", edge, hex_of(top->o_data).c_str()); got++;
        }}
        if (take_in) {{ std::printf("I %ld\\n", edge); next++; }}
        top->clk = 1; top->eval();
    }}
    top->final(); delete top;
    if (got < want) {{ std::fprintf(stderr, "only %ld of %ld output beats within %ld cycles\\n", got, want, max_cycles); return 3; }}
    return 0;
}}
"""


@dataclass(frozen=True)
class StreamRun:
    """What a stream co-simulation produced: output beats (ints), the edge each was taken at, and
    the edge each input beat was accepted at."""

    out_words: tuple
    out_edges: tuple
    in_edges: tuple


def stream_cosim(verilog_text: str, top: str, in_beats, out_beats: int, workdir=None, seed: int = 0,
                 valid_percent: int = 100, ready_percent: int = 100, max_cycles: int | None = None,
                 timeout_seconds: float = 600) -> StreamRun:
    """Build ``verilog_text`` with :func:`stream_testbench_cpp`, feed ``in_beats`` (ints), collect
    ``out_beats`` output beats."""
    if not (0 < valid_percent <= 100 and 0 < ready_percent <= 100):
        raise UsageError("valid_percent and ready_percent must be in 1..100")
    exe = build(verilog_text, top, stream_testbench_cpp(top), workdir)
    in_beats = list(in_beats)
    if max_cycles is None:
        max_cycles = 1000 + 100 * (len(in_beats) + out_beats) * 100 // min(valid_percent, ready_percent)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "beats.hex"
        path.write_text("".join(f"{int(b):x}\n" for b in in_beats))
        out = run(exe, [path, out_beats, seed, valid_percent, ready_percent, max_cycles], timeout_seconds)
    words, edges, ins = [], [], []
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == "O":
            edges.append(int(parts[1]))
            words.append(int(parts[2], 16))
        elif parts and parts[0] == "I":
            ins.append(int(parts[1]))
    return StreamRun(tuple(words), tuple(edges), tuple(ins))


def cocotb_available() -> bool:
    """cocotb 1.8.x (the last line that supports Debian's Verilator 5.006) and verilator present."""
    try:
        import cocotb  # noqa: F401
        import find_libpython  # noqa: F401  (cocotb's runner needs it)
    except ImportError:
        return False
    return verilator_available()


def cocotb_stream_cosim(verilog_text: str, top: str, in_beats, out_beats: int, workdir, seed: int = 0,
                        valid_percent: int = 100, ready_percent: int = 100,
                        max_cycles: int | None = None) -> StreamRun:
    """:func:`stream_cosim` through cocotb (testbench :mod:`flexspec.rtl.cocotb_stream`, Verilator
    as simulator).  Build or run failures raise ToolError (the tools print their own messages)."""
    import json
    import sys
    import warnings

    if not cocotb_available():
        raise ToolError("cocotb 1.8 with find_libpython and verilator are needed (pip install 'cocotb>=1.8,<1.9')")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "runners are experimental"
        from cocotb.runner import get_results, get_runner  # heavy, optional
    in_beats = list(in_beats)
    if max_cycles is None:
        max_cycles = 1000 + 100 * (len(in_beats) + out_beats) * 100 // min(valid_percent, ready_percent)
    folder = Path(workdir)
    folder.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(verilog_text.encode()).hexdigest()[:16]
    src = folder / f"{top}-{key}.v"
    src.write_text(verilog_text)
    case = folder / f"{top}-{key}-case-{seed}.json"
    result = folder / f"{top}-{key}-out-{seed}.json"
    case.write_text(json.dumps({"beats": [format(int(b), "x") for b in in_beats], "out_beats": out_beats,
                                "seed": seed, "valid_percent": valid_percent, "ready_percent": ready_percent,
                                "max_cycles": max_cycles, "result": str(result)}))
    src_root = str(Path(_flexspec_init).resolve().parents[1])
    env = {"FLEXSPEC_COCOTB_CASE": str(case),
           "PYTHONPATH": os.pathsep.join([src_root, *filter(None, [os.environ.get("PYTHONPATH")])])}
    runner = get_runner("verilator")
    build_dir = folder / f"cocotb-{top}-{key}"
    try:
        runner.build(verilog_sources=[src], hdl_toplevel=top, build_dir=build_dir, always=False,
                     build_args=["-Wno-fatal", "-Wno-lint", "-Wno-style", "-CFLAGS", "-O0"])
        xml = runner.test(test_module="flexspec.rtl.cocotb_stream", hdl_toplevel=top, build_dir=build_dir,
                          test_dir=folder, extra_env=env, results_xml=f"results-{top}-{seed}.xml")
    except (Exception, SystemExit) as exc:  # noqa: BLE001 -- the tools printed their own messages
        raise ToolError(f"cocotb/verilator run of {top} failed: {exc} (the tool's output is above)") from None
    tests, failed = get_results(Path(xml))
    if failed or not result.is_file():
        raise ToolError(f"cocotb testbench for {top} failed ({failed} of {tests}); see its log above")
    data = json.loads(result.read_text())
    sys.stdout.flush()
    return StreamRun(tuple(int(h, 16) for _, h in data["out"]), tuple(e for e, _ in data["out"]), tuple(data["in"]))
