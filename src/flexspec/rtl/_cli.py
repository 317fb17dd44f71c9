"""``flexspec rtl``: generate the spectral pass of one layer of the shipped model; ``--verify``
co-simulates it in Verilator against the functional model and the simulator's cycle count."""

from __future__ import annotations

import argparse
import io
import json

import numpy as np

from ..accel.arch import AcceleratorConfig
from ..accel.fixed_point import execute_group_tiles, wrap_signed
from ..accel.sim import engine_layer_cycles
from ..errors import FlexSpecError, UsageError
from ..fileio import OutputError, check_output_folder, write_files
from ..spectral.geometry import tile_grid, tile_size
from ..spectral.oaa import crop_output, overlap_add
from .export import design_files
from .source import RTLOptions, layer_case
from .verilate import verilate_spectral_pass
from .verilator import DEFAULT_WORKDIR

TOP = "flexspec_spectral_pass"


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "rtl",
        help="generate synthesizable Verilog of one layer's spectral pass (PE array, buffers, controller)",
        description=(
            "Schedule one layer of the shipped Fashion-MNIST model and write the Verilog of its spectral pass "
            "(tile stream in, double-buffered banked tile buffer, the P-PE sparse array running every kernel "
            "group of a tile back to back from a schedule memory, output-channel accumulators, read-out "
            "stream out, and the controller walking the layer's tiles), the memory images, the input stream "
            "and a README. --verify co-simulates it in Verilator. Defaults: P=4, B=4, R=1, 16-bit data, "
            "48-bit accumulators, layer conv2_1."
        ),
    )
    p.add_argument("--layer", default=None, metavar="L", help="conv layer of fmnist_vgg (default conv2_1)")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="YAML file of options (num_pes, num_banks, ports, broadcast, bank_map, method, grouping, "
                        "data_bits, acc_bits, dsp_per_complex_mac, prune_method, density, image_index, tile)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write (created if missing)")
    p.add_argument("--verify", action="store_true",
                   help="co-simulate in Verilator: bit-exact with the functional model, cycles equal to the "
                        "simulator's; writes verify.json, input.npy, output.npy, kernels.npz")
    p.set_defaults(func=run)


def functional_accumulators(case):
    """The functional model's accumulators of every tile: int64 [T, Cout, F] (re, im), from the
    per-PE group model (execute_group_tiles) scattered to the output channels."""
    c = case.pe_config
    T = case.num_tiles
    re = np.zeros((T, c.acc_channels, c.num_freq), np.int64)
    im = np.zeros_like(re)
    for g in case.groups:
        pr, pi = execute_group_tiles(g.table, np.asarray(c.bank_of), c.ports, case.tile_re[g.in_channel],
                                     case.tile_im[g.in_channel], g.kernel_re, g.kernel_im, broadcast=c.broadcast,
                                     acc_bits=c.acc_bits, dsp_per_complex_mac=c.dsp_per_complex_mac)
        live = g.slots >= 0
        np.add.at(re, (slice(None), g.slots[live]), pr[:, live])
        np.add.at(im, (slice(None), g.slots[live]), pi[:, live])
    return wrap_signed(re, c.acc_bits), wrap_signed(im, c.acc_bits)


def spatial_output(case, acc_re, acc_im) -> np.ndarray:
    """float [Cout, H, W]: the accumulators dequantized, inverse transformed, overlap-added and
    cropped (numpy), plus the bias: the layer's output before ReLU."""
    k, n = case.kernels.kernel_size, case.kernels.fft_size
    cin, H, W = case.input_float.shape
    ty, tx = tile_grid(H, W, k, n)
    spec = case.fmt.dequantize_acc(acc_re, acc_im)  # [T, Cout, F]
    blocks = np.fft.irfft2(spec.reshape(ty, tx, -1, n, n // 2 + 1), s=(n, n))  # [ty, tx, Cout, N, N]
    full = overlap_add(blocks.transpose(2, 0, 1, 3, 4)[None], tile_size(n, k))
    return crop_output(full, H, W, k, 1)[0] + case.bias[:, None, None]


def run(args: argparse.Namespace) -> int:
    options = RTLOptions.from_yaml(args.config) if args.config else RTLOptions()
    try:
        out = check_output_folder(args.out)
    except OutputError as exc:
        raise UsageError(str(exc)) from None
    case = layer_case(args.layer, options)
    c = case.pe_config
    files = design_files(case, TOP)
    print(f"layer {case.layer}: {case.num_groups} kernel groups, program {case.program.length} cycles per tile, "
          f"{case.num_tiles} tiles; P={c.num_pes} B={c.num_banks} R={c.ports} N={c.fft_size}, "
          f"data {c.data_bits} bits, accumulators {c.acc_bits} bits; data: {case.provenance}")
    if not args.verify:
        write_files(out, files)
        print(f"wrote {len(files)} files to {args.out}")
        return 0
    write_files(out, files)
    tiles = [case.tile(t) for t in range(case.num_tiles)]
    r = verilate_spectral_pass(c, case.program, tiles, DEFAULT_WORKDIR)
    want_re, want_im = functional_accumulators(case)
    bit_exact = bool(np.array_equal(r["acc_re"], want_re) and np.array_equal(r["acc_im"], want_im))
    simulated = engine_layer_cycles(case.mask, AcceleratorConfig(arrays=1, pes=c.num_pes, banks=c.num_banks,
                                                                 ports=c.ports, broadcast=c.broadcast),
                                    case.num_tiles)
    report = {"format_version": 1, "layer": case.layer, "bit_exact": bit_exact, "rtl_cycles": int(r["cycles"]),
              "simulated_cycles": int(simulated), "cycles_equal": int(r["cycles"]) == int(simulated),
              "outputs_compared": int(want_re.size), "conflict": r["conflict"], "tiles": case.num_tiles,
              "program_cycles": case.program.length, "provenance": case.provenance,
              "output_npy": "RTL accumulators dequantized, then inverse FFT, overlap-add, crop and bias in numpy"}
    def npy(a):
        buf = io.BytesIO()
        np.save(buf, a)
        return buf.getvalue()

    kbuf = out / ".kernels.npz"
    case.kernels.save(kbuf)
    kbytes = kbuf.read_bytes()
    kbuf.unlink()
    write_files(out, {"verify.json": json.dumps(report, indent=1) + "\n",
                      "input.npy": npy(np.asarray(case.input_float, dtype=np.float32)),
                      "output.npy": npy(spatial_output(case, r["acc_re"], r["acc_im"]).astype(np.float32)),
                      "kernels.npz": kbytes})
    print(f"Verilator: {'bit-exact with' if bit_exact else 'DIFFERS FROM'} the functional model "
          f"({report['outputs_compared']} accumulators); {r['cycles']} cycles, simulator {simulated}")
    if not (bit_exact and report["cycles_equal"]):
        raise FlexSpecError("the RTL co-simulation disagrees with the functional model or the simulator "
                            f"(see {out / 'verify.json'})")
    return 0
