"""cocotb testbench: drive a one-stream-in / one-stream-out block (ports ``i_valid/i_ready/i_data``,
``o_valid/o_ready/o_data``, clock ``clk``, reset ``rst``) with seeded random input gaps and output
back-pressure, and record what comes out.  The protocol equals the generated C++ harness of
:func:`flexspec.rtl.verilator.stream_testbench_cpp` (edges numbered from 0 after reset).

Run through :func:`flexspec.rtl.verilator.cocotb_stream_cosim`; the case comes in a JSON file named
by the environment variable ``FLEXSPEC_COCOTB_CASE`` (``beats`` as hex strings, ``out_beats``,
``seed``, ``valid_percent``, ``ready_percent``, ``max_cycles``, ``result``: where to write
``{"out": [[edge, hex], ...], "in": [edge, ...]}``).  Comparison with the model is the caller's.
"""

from __future__ import annotations

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge, Timer


@cocotb.test()
async def stream(dut):
    with open(os.environ["FLEXSPEC_COCOTB_CASE"]) as fh:
        case = json.load(fh)
    beats = [int(b, 16) for b in case["beats"]]
    rng = random.Random(case["seed"])
    cocotb.start_soon(Clock(dut.clk, 10, units="ns").start())
    dut.rst.value = 1
    dut.i_valid.value = 0
    dut.o_ready.value = 0
    for _ in range(2):
        await RisingEdge(dut.clk)
    await Timer(1, units="ns")
    dut.rst.value = 0
    outs, ins, nxt = [], [], 0
    for edge in range(case["max_cycles"]):
        if len(outs) >= case["out_beats"]:
            break
        offer = nxt < len(beats) and rng.randrange(100) < case["valid_percent"]
        dut.i_valid.value = int(offer)
        if offer:
            dut.i_data.value = beats[nxt]
        dut.o_ready.value = int(rng.randrange(100) < case["ready_percent"])
        await ReadOnly()
        take_in = offer and int(dut.i_ready.value)
        if int(dut.o_valid.value) and int(dut.o_ready.value):
            outs.append([edge, format(int(dut.o_data.value), "x")])
        if take_in:
            ins.append(edge)
            nxt += 1
        await RisingEdge(dut.clk)
        await Timer(1, units="ns")  # leave the edge's read-only phase before driving again
    with open(case["result"], "w") as fh:
        json.dump({"out": outs, "in": ins}, fh)
