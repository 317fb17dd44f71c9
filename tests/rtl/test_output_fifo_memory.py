"""The output FIFO's memory mark (``rtl.output_fifo``): the generated Verilog of a layer engine
carries ram_style "ultra" on its output FIFO exactly when the design places the FIFOs in URAM
(``AcceleratorConfig.fifo_memory``), and the FIFO is the size the resource model charges."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("amaranth")

from amaranth.back import verilog  # noqa: E402

from flexspec.accel.arch import AcceleratorConfig  # noqa: E402
from flexspec.accel.layer_events import output_fifo_beats, output_fifo_width_bits  # noqa: E402
from flexspec.errors import UsageError  # noqa: E402
from flexspec.rtl.engine_case import engine_spec, random_engine_case  # noqa: E402
from flexspec.rtl.layer_engine import LayerEngine  # noqa: E402
from flexspec.rtl.output_fifo import OutputFIFO, output_fifo  # noqa: E402


def _styles(src: str) -> list[str]:
    return re.findall(r'\(\*\s*ram_style\s*=\s*"(\w+)"\s*\*\)', src)


@pytest.mark.parametrize("memory, style", [("bram", "block"), ("uram", "ultra")])
def test_the_fifo_memory_is_marked(memory, style):
    f = output_fifo(16, 8, 16, memory)
    assert (f.depth, f.width) == (output_fifo_beats(16, 8), output_fifo_width_bits(8, 16))
    src = verilog.convert(f, name="ofifo", ports=[f.w_data, f.w_en, f.w_rdy, f.r_data, f.r_en, f.r_rdy])
    assert _styles(src) == [style]


def test_a_bad_memory_is_refused():
    with pytest.raises(ValueError, match="output FIFO memory"):
        OutputFIFO(width=8, depth=4, memory="lutram")
    with pytest.raises(UsageError, match="fifo_memory"):
        AcceleratorConfig(fifo_memory="ultra")


@pytest.mark.parametrize("memory", ["bram", "uram"])
def test_the_layer_engine_marks_its_output_fifo(memory):
    """A small random engine generated from a design with each placement: the output FIFO's memory
    is marked "ultra" exactly when the design puts the FIFOs in URAM."""
    case, ssk, _, bias = random_engine_case()
    cfg = AcceleratorConfig(arrays=1, pes=4, banks=4, ports=1, fifo_memory=memory)
    spec = engine_spec(ssk, case.spec.quant, cfg, 10, 9, bias)
    assert spec.fifo_memory == memory
    styles = _styles(verilog.convert(LayerEngine(spec), name="engine"))
    assert ("ultra" in styles) == (memory == "uram")
    assert styles.count("ultra") <= 1  # only the output FIFO: the psum FIFO and the banks are not moved
