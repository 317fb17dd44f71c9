"""An array's output FIFO (``rtl.layer_engine`` and ``rtl.cluster``): amaranth's ``SyncFIFOBuffered``
of ``layer_events.output_fifo_beats`` x ``output_fifo_width_bits``, its memory marked for the memory
the design places it in (``AcceleratorConfig.fifo_memory``): ``"uram"`` sets the synthesis attribute
``ram_style = "ultra"`` (Vivado's UltraRAM; Yosys ``synth_xilinx -uram`` maps it to URAM288), so the
vendor flow puts the FIFO where ``accel.resources`` charges it."""

from __future__ import annotations

from amaranth.lib.fifo import SyncFIFOBuffered

from ..accel.layer_events import output_fifo_beats, output_fifo_width_bits

#: ``AcceleratorConfig.fifo_memory`` -> the memory's ``ram_style`` attribute (None: the tool's choice).
RAM_STYLE = {"bram": "block", "uram": "ultra"}


class OutputFIFO(SyncFIFOBuffered):
    """``depth`` x ``width`` bits in ``memory`` ("bram"/"uram"); :func:`output_fifo` sizes it."""

    def __init__(self, *, width: int, depth: int, memory: str = "bram"):
        if memory not in RAM_STYLE:
            raise ValueError(f"output FIFO memory must be one of {', '.join(RAM_STYLE)}, got {memory!r}")
        super().__init__(width=width, depth=depth)
        self.memory = memory

    def elaborate(self, platform):
        m = super().elaborate(platform)
        if self.depth > 1:  # depth 1 is a register, no memory
            m.submodules.storage.attrs["ram_style"] = RAM_STYLE[self.memory]
        return m


def output_fifo(channels: int, fft_size: int, ifft_bits: int, memory: str = "bram") -> OutputFIFO:
    """An array's output FIFO: CREDITS tiles of ``channels`` output channels' IFFT-width beats."""
    return OutputFIFO(width=output_fifo_width_bits(fft_size, ifft_bits), depth=output_fifo_beats(channels, fft_size),
                      memory=memory)
