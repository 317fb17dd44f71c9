"""``flexspec rtl``: generate the whole spectral layer engine of one layer of the shipped model;
``--verify`` co-simulates it in Verilator against the fixed-point functional model and the cycle
model the simulator charges."""

from __future__ import annotations

import argparse
import io
import json

import numpy as np

from ..accel.arch import AcceleratorConfig
from ..accel.functional import calibrate_fmnist, calibration_images, layer_error_bound
from ..accel.layer_events import CREDITS, blocked_engine_geometry, engine_cycles, engine_geometry
from ..accel.sim import schedule_layer_blocks
from ..errors import FlexSpecError, UnknownNameError, UsageError
from ..fileio import OutputError, check_output_folder, write_files
from ..spectral import real_model
from ..spectral.sparse import sparse_oaa_conv2d
from .cluster_cli import run_cluster
from .engine_case import EngineBlocking, EngineCase, engine_case
from .export import hex_lines, port_rows
from .source import DEFAULT_LAYER, RTLOptions, _layer_input, _load_network
from .verilator import DEFAULT_WORKDIR, require_verilator

#: Calibration images for the layer's fixed-point formats (never the evaluated image).
CALIBRATION_IMAGES = 100


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "rtl",
        help="generate synthesizable Verilog of one layer's whole spectral engine (FFT, PE array, IFFT, overlap-add)",
        description=(
            "Schedule one layer of the shipped Fashion-MNIST model and write the Verilog of its whole spectral "
            "layer engine on one array: input tile rows in (valid/ready), fixed-point 2-D FFT, bank writer, "
            "double-buffered banked tile buffer, the P-PE sparse array running every kernel group of a tile back "
            "to back from a schedule memory, output-channel accumulators, rounding, fixed-point 2-D IFFT, "
            "overlap-add, bias, ReLU and the write-back stream, plus memory images, the input stream and a "
            "README. --verify co-simulates it in Verilator. Defaults: P=4, B=4, R=1, 16-bit data, 48-bit "
            "accumulators, layer conv2_1."
        ),
    )
    p.add_argument("--layer", default=None, metavar="L", help="conv layer of fmnist_vgg (default conv2_1)")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="YAML file of options (num_pes, num_banks, ports, broadcast, bank_map, method, data_bits, "
                        "acc_bits, dsp_per_complex_mac, prune_method, density, image_index; the engine's blocking: "
                        "cout_block, cin_block, tile_block (0: whole), loop_order, e.g. 'oit')")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write (created if missing)")
    p.add_argument("--verify", action="store_true",
                   help="co-simulate in Verilator: bit-exact with the fixed-point functional model, cycles equal "
                        "to the simulator's; writes verify.json, input.npy, output.npy, kernels.npz")
    p.add_argument("--cluster", default=None, metavar="A_T,A_G,F,E",
                   help="generate the shared FFT/IFFT pool instead (A_T array columns x A_G array rows, F FFT and E "
                        "IFFT engines; F divides A_T, E divides A_G); --verify checks its spatial output and cycles")
    p.set_defaults(func=run)


def layer_engine_case(layer: str | None, options: RTLOptions) -> tuple[EngineCase, dict]:
    """The engine case of one layer of the shipped model (formats calibrated on other images)."""
    layer = layer or DEFAULT_LAYER
    if layer not in real_model.CONV_NAMES:
        raise UnknownNameError("layer", layer, real_model.CONV_NAMES)
    net = _load_network(options)
    ssk = net.layers[layer]
    if options.grouping != "balanced":
        raise UsageError("the layer engine accumulates by output channel: grouping must be 'balanced'")
    x = _layer_input(net, layer, options.image_index)
    with np.load(real_model.DATA_DIR / "fmnist_test1000.npz", allow_pickle=False) as data:
        image = data["images"][options.image_index:options.image_index + 1]
    calib, calib_text = calibration_images(image, CALIBRATION_IMAGES)
    config = AcceleratorConfig(arrays=1, pes=options.num_pes, banks=options.num_banks, ports=options.ports,
                               fft_size=ssk.fft_size, data_bits=options.data_bits, acc_bits=options.acc_bits,
                               broadcast=options.broadcast)
    quant = calibrate_fmnist(net, calib, data_bits=options.data_bits, acc_bits=options.acc_bits)[layer]
    blocking = EngineBlocking(options.cout_block, options.cin_block, options.tile_block, options.loop_order) \
        if options.blocked else None
    # 'auto' (the default): the map bank-friendly kernels were pruned for when they carry one for B
    bank_map = net.bank_map(layer, options.num_banks) if options.bank_map == "auto" else options.bank_map
    sched = schedule_layer_blocks(ssk.mask(), config, min(options.cout_block or ssk.out_channels, ssk.out_channels),
                                  options.method or "optimal", bank_map=bank_map)
    bias = net.biases.get(layer)
    case = engine_case(ssk, x, quant, config, bias, 1, sched, options.dsp_per_complex_mac, blocking)
    info = {"layer": layer, "network": net, "kernels": ssk, "config": config, "bias": bias, "input": x,
            "calibration": calib_text, "bank_map": bank_map,
            "provenance": f"{net.network} {layer}, {net.method or options.prune_method} pruning, density "
                          f"{options.density}; {net.provenance}; input: Fashion-MNIST test image "
                          f"{options.image_index}; formats calibrated on {calib_text}"}
    return case, info


def design_files(case: EngineCase, info: dict, options: RTLOptions) -> dict:
    """Everything ``flexspec rtl`` writes for one layer (name -> text), built in memory first."""
    import amaranth  # optional dependency (extra "rtl"): imported on use

    from .engine_cosim import engine_verilog
    from .layer_engine import TOP, LayerEngine

    spec = case.spec
    c, g, q, prog = spec.pe_config, spec.geometry, spec.quant, spec.program
    ports = port_rows(LayerEngine(spec))
    resolved = {
        "format_version": 3, "layer": info["layer"], "top": TOP, "options": options.to_dict(),
        "provenance": info["provenance"], "geometry": {k: getattr(g, k) for k in (
            "fft_size", "kernel_size", "padding", "height", "width", "in_channels", "out_channels", "tile",
            "tiles_y", "tiles_x", "tiles", "offset", "out_height", "out_width", "out_beats", "bo", "bi", "bt",
            "order", "cout_blocks", "cin_blocks", "psum_beats_in_flight")} | {"runs": len(g.runs),
                                                                            "block_program_cycles": list(g.block_program_cycles)},
        "fixed_point": q.to_dict(), "bias_int": list(spec.bias_int), "program_cycles": prog.length,
        "expected_cycles": spec.expected_cycles(), "output_fifo_tiles": CREDITS,
        "pe_array": {k: getattr(c, k) for k in (
            "num_pes", "num_banks", "ports", "fft_size", "schedule_depth", "in_channels", "acc_channels",
            "data_bits", "acc_bits", "dsp_per_complex_mac", "broadcast")} | {"bank_of": list(c.bank_of)}}
    return {
        f"{TOP}.v": engine_verilog(spec, checks=False),
        "schedule.hex": hex_lines(prog.words, c.word_bits(False)),
        "readout_mask.hex": hex_lines(prog.mask, c.num_pes * c.fft_size),
        "input_stream.hex": hex_lines(case.input_beats(), g.tile * c.data_bits),
        "config.json": json.dumps(resolved, indent=1, default=str) + "\n",
        "README.md": readme_text(case, info, TOP, ports, amaranth.__version__),
    }


def _walk_text(g) -> str:
    """The controller's walk of the layer, in words."""
    if not g.blocked and g.bt == g.tiles:
        return (f"The controller walks the {g.tiles_y} x {g.tiles_x} tiles in row-major order, one kernel block (all "
                f"{g.out_channels} output channels) and one input-channel block (all {g.in_channels}) on the array.")
    return (f"The controller walks the layer blocked: {g.cout_blocks} cout blocks of {g.bo} output channels (the "
            f"accumulators), {g.cin_blocks} cin blocks of {g.bi} input channels (the tile buffer), tile blocks of "
            f"{g.bt} of the {g.tiles} tiles, loop order '{g.order}' (outermost first), {len(g.runs)} runs (one tile "
            f"through one kernel block's program each, back to back). The host streams each run's channels of its "
            f"tile. " + (f"A tile's {g.cin_blocks} cin blocks run back to back into one accumulator half (the "
                         f"cin loop is innermost), read out once after the last." if g.chained else
                         f"A run's accumulators are read out after it; unless it is of the first cin block the "
                         f"previous block's partial sums (from an on-chip FIFO of {g.psum_beats_in_flight} columns) "
                         f"are added, and unless it is of the last the sums go back into that FIFO instead of the "
                         f"IFFT."))


def readme_text(case: EngineCase, info: dict, top: str, ports, amaranth_version: str) -> str:
    spec = case.spec
    c, g, q, prog = spec.pe_config, spec.geometry, spec.quant, spec.program
    rows = "\n".join(f"| `{n}` | {d} | {w} |" for n, d, w in ports)
    return f"""# Generated spectral layer engine: `{top}`

Generated by `flexspec rtl` from Amaranth {amaranth_version}. Layer `{info['layer']}`. Data: {info['provenance']}.

## What it is
One layer's whole spectral engine on one array, for one image: input tile rows arrive as a valid/ready stream; a
fixed-point 2-D FFT ({g.fft_size} x {g.fft_size}, 18-bit twiddles) turns each channel of each tile into its
Hermitian half-plane; a bank writer places it into the double-buffered tile buffer through the schedule's static
bank map ({c.num_banks} banks x {c.ports} read ports); the {c.num_pes}-PE sparse array runs the layer's program
({prog.length} schedule words: every kernel group of the tile, back to back) into double-buffered output-channel
accumulators; their read-out (one column of {g.fft_size} a beat) is rounded from {c.acc_bits} to {q.ifft_bits} bits
into a FIFO of {CREDITS} tiles (a tile starts loading only while fewer than {CREDITS} tiles are loaded and not yet
consumed, so the pass never stalls); a fixed-point 2-D IFFT to {q.block_bits} bits, the overlap-add (stride
{g.tile}; carries in two small memories), the bias, rounding to {c.data_bits} bits and ReLU feed the write-back.
{_walk_text(g)}

## Files
- `{top}.v`: synthesizable Verilog-2005, top module `{top}`, clock `clk`, synchronous active-high reset `rst`. The
  schedule memory and the read-out mask are initialized with this layer's program (the images below).
- `schedule.hex` ({prog.length} words of {c.word_bits(False)} bits), `readout_mask.hex` ({len(prog.mask)} words of
  {c.num_pes * c.fft_size} bits): `$readmemh` images of the same contents.
- `input_stream.hex`: the host beats of the test image ({len(g.runs)} runs x their channels x {g.tile} rows).
- `config.json`: the resolved configuration, the fixed-point formats and the expected cycle count.
- With `--verify`: `verify.json`, `input.npy` (float [Cin, H, W]), `output.npy` (the engine's write-back
  dequantized, [Cout, H, W], after ReLU), `kernels.npz` (the layer's SparseSpectralKernels).

## Parameters
| parameter | value |
|---|---|
| PEs (P) / banks (B) / ports per bank (R) | {c.num_pes} / {c.num_banks} / {c.ports} |
| FFT size (N) / kernel (K) / tile (h = N-K+1) | {g.fft_size} / {g.kernel_size} / {g.tile} |
| input H x W / output H' x W' / padding | {g.height} x {g.width} / {g.out_height} x {g.out_width} / {g.padding} |
| input / output channels | {g.in_channels} / {g.out_channels} |
| data bits / accumulator bits / IFFT input bits / IFFT output bits | {c.data_bits} / {c.acc_bits} / {q.ifft_bits} / {q.block_bits} |
| fractional bits: input, spectrum, kernel, IFFT input, block, output | {q.in_frac}, {q.spec_frac}, {q.kernel_frac}, {q.ifft_in_frac}, {q.block_frac}, {q.out_frac} |
| shifts: FFT output, accumulator, IFFT output, output | {q.fft_shift}, {q.acc_shift}, {q.ifft_shift}, {q.out_shift} |
| cycles for one image (host always valid, write-back always ready) | {spec.expected_cycles()} |

## Ports
| port | dir | bits |
|---|---|---|
{rows}

- `i_data`: tiles in row-major order, channels 0..{g.in_channels - 1} of a tile, rows 0..{g.tile - 1} of a channel;
  sample j at bits `[{c.data_bits}j, {c.data_bits}(j+1))`, two's complement at {q.in_frac} fractional bits, zero
  outside the image.
- `o_data`: value c is output pixel `(o_chan, o_row, o_col + c - {g.offset})` when bit c of `o_mask` is set
  ({c.data_bits}-bit, {q.out_frac} fractional bits, after ReLU). `done` rises after the last write-back beat.
- Arithmetic: `flexspec.accel.functional.fixed_layer`, bit for bit; timing: `flexspec.accel.layer_events.engine_events`,
  to the cycle (both checked in Verilator).

## Taking it into a vendor flow
- Vivado / Quartus / Libero / Radiant: add `{top}.v` as a Verilog source and set `{top}` as top (or instantiate it).
  Constrain `clk`; `rst` is synchronous, active high.
- Memories are inferred: tile banks, the schedule memory, per-PE accumulators, the read-out mask, the output FIFO
  and the overlap-add carries. Multipliers: the PE array's {c.multipliers} and the FFT/IFFT twiddle products.
- Re-generate for another design point with `flexspec rtl --config FILE`.
"""


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def verify(case: EngineCase, info: dict, out) -> tuple[dict, dict]:
    """Co-simulate in Verilator; the report and the extra files."""
    from .engine_cosim import verilate_engine

    spec, g, q = case.spec, case.spec.geometry, case.spec.quant
    r = verilate_engine(case, DEFAULT_WORKDIR)
    want = case.expected_output()
    bit_exact = bool(np.array_equal(r["output"], want))
    # the simulator's own schedule of the layer (the same scheduler call as the simulator's) and the
    # whole-engine cycle model
    sched = schedule_layer_blocks(info["kernels"].mask(), info["config"], g.bo, info["method"],
                                  bank_map=info["bank_map"])
    cfg = info["config"]
    if g.cout_block or g.cin_block or g.tile_block:
        geom = blocked_engine_geometry(sched.cycles, sched.schedule.bank_of, cfg.banks, cfg.pes, cfg.fft_size,
                                       g.in_channels, g.out_channels, g.height, g.width, g.cout_block, g.cin_block,
                                       g.tile_block, g.order, readout_rows=cfg.readout_rows)
    else:
        geom = engine_geometry(sched.schedule.cycles, sched.schedule.bank_of, cfg.banks, cfg.pes, cfg.fft_size,
                               g.in_channels, g.out_channels, g.height, g.width, readout_rows=cfg.readout_rows)
    simulated = engine_cycles(geom)
    y = np.ldexp(r["output"].astype(np.float64), -q.out_frac)
    ref = np.maximum(sparse_oaa_conv2d(info["input"][None].astype(np.float64), info["kernels"], 1, info["bias"])[0], 0)
    bound = layer_error_bound(case.trace, info["input"][None], info["kernels"], 1, info["bias"])[0] \
        + 1e-9 * (1 + float(np.abs(ref).max(initial=0.0)))
    err = np.abs(y - ref)
    report = {"format_version": 2, "layer": info["layer"], "bit_exact": bit_exact, "rtl_cycles": int(r["cycles"]),
              "simulated_cycles": int(simulated), "cycles_equal": int(r["cycles"]) == int(simulated),
              "outputs_compared": int(want.size), "pixels_written": int(r["writes"]), "conflict": r["conflict"],
              "tiles": g.tiles, "program_cycles": spec.program.length, "provenance": info["provenance"],
              "float_max_abs_error": float(err.max(initial=0.0)), "float_bound_max": float(bound.max(initial=0.0)),
              "float_pixels_over_bound": int(np.count_nonzero(err > bound)),
              "output_npy": "the engine's write-back (after ReLU) dequantized at out_frac",
              "float_reference": "ReLU of the float64 sparse spectral OaA (sparse_oaa_conv2d) of input.npy with "
                                 "kernels.npz and the bias; per-pixel bound flexspec.accel.functional.layer_error_bound"}
    files = {"verify.json": json.dumps(report, indent=1) + "\n",
             "input.npy": _npy(np.asarray(info["input"], dtype=np.float32)),
             "output.npy": _npy(y.astype(np.float32))}
    return report, files


def run(args: argparse.Namespace) -> int:
    options = RTLOptions.from_yaml(args.config) if args.config else RTLOptions()
    try:
        out = check_output_folder(args.out)
    except OutputError as exc:
        raise UsageError(str(exc)) from None
    if args.verify:
        require_verilator()  # before any work: a missing tool is one line, nothing written
    if getattr(args, "cluster", None):
        return run_cluster(args.layer, options, args.cluster, out, args.verify)
    case, info = layer_engine_case(args.layer, options)
    info["method"] = options.method or "optimal"
    spec = case.spec
    c, g = spec.pe_config, spec.geometry
    files = design_files(case, info, options)
    print(f"layer {info['layer']}: {len(spec.groups)} kernel groups, program {spec.program.length} cycles per tile, "
          f"{g.tiles} tiles; P={c.num_pes} B={c.num_banks} R={c.ports} N={c.fft_size}, data {c.data_bits} bits, "
          f"accumulators {c.acc_bits} bits; {spec.expected_cycles()} cycles; data: {info['provenance']}")
    if not args.verify:
        write_files(out, files)
        print(f"wrote {len(files)} files to {args.out}")
        return 0
    report, extra = verify(case, info, out)
    kbuf = out / ".kernels.npz"
    write_files(out, files)
    info["kernels"].save(kbuf)
    kbytes = kbuf.read_bytes()
    kbuf.unlink()
    write_files(out, extra | {"kernels.npz": kbytes})
    print(f"Verilator: {'bit-exact with' if report['bit_exact'] else 'DIFFERS FROM'} the functional model "
          f"({report['outputs_compared']} output pixels); {report['rtl_cycles']} cycles, simulator "
          f"{report['simulated_cycles']}; float OaA within the bound at {report['outputs_compared'] - report['float_pixels_over_bound']}"
          f" of {report['outputs_compared']} pixels")
    if not (report["bit_exact"] and report["cycles_equal"]):
        raise FlexSpecError("the RTL co-simulation disagrees with the functional model or the simulator "
                            f"(see {out / 'verify.json'})")
    return 0
