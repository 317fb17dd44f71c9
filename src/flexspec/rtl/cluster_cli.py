"""``flexspec rtl --cluster A_T,A_G,F,E``: generate the shared FFT/IFFT pool cluster
(``flexspec.rtl.cluster``) for one layer of the shipped model instead of the one-array engine;
``--verify`` co-simulates it in Verilator against the fixed-point functional model (the IFFT
blocks) and the pool's cycle model."""

from __future__ import annotations

import json

import numpy as np

from ..accel.arch import AcceleratorConfig
from ..accel.functional import calibrate_fmnist, calibration_images
from ..accel.pool_events import pool_cycles
from ..errors import FlexSpecError, UnknownNameError, UsageError
from ..fileio import write_files
from ..spectral import real_model
from .cluster import TOP, PoolCluster
from .cluster_case import ClusterCase, PoolShape, check_shape, cluster_case
from .export import port_rows, to_verilog
from .source import DEFAULT_LAYER, RTLOptions, _layer_input, _load_network
from .verilator import DEFAULT_WORKDIR

#: Calibration images for the layer's fixed-point formats (never the evaluated image).
CALIBRATION_IMAGES = 100


def parse_shape(text: str) -> PoolShape:
    """``"a_t,a_g,F,E"`` -> PoolShape (a usage error names what is wrong)."""
    parts = text.split(",")
    if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
        raise UsageError(f"--cluster wants four positive integers A_T,A_G,F,E (array columns, array rows, FFT and "
                         f"IFFT engines), got {text!r}")
    return PoolShape(*(int(p) for p in parts))


def layer_cluster_case(layer: str | None, options: RTLOptions, shape: PoolShape) -> tuple[ClusterCase, dict]:
    """The cluster case of one layer of the shipped model (formats calibrated on other images)."""
    layer = layer or DEFAULT_LAYER
    if layer not in real_model.CONV_NAMES:
        raise UnknownNameError("layer", layer, real_model.CONV_NAMES)
    if options.blocked:
        raise UsageError("the pool cluster walks one kernel block: cout_block, cin_block and tile_block must be 0")
    net = _load_network(options)
    ssk = net.layers[layer]
    x = _layer_input(net, layer, options.image_index)
    check_shape(shape, ssk.out_channels, x.shape[1], x.shape[2], ssk.fft_size, ssk.kernel_size)  # before the work
    with np.load(real_model.DATA_DIR / "fmnist_test1000.npz", allow_pickle=False) as data:
        image = data["images"][options.image_index:options.image_index + 1]
    calib, calib_text = calibration_images(image, CALIBRATION_IMAGES)
    config = AcceleratorConfig(arrays=shape.arrays, pes=options.num_pes, banks=options.num_banks, ports=options.ports,
                               fft_size=ssk.fft_size, data_bits=options.data_bits, acc_bits=options.acc_bits,
                               fft_engines=shape.fft_engines, ifft_engines=shape.ifft_engines)
    quant = calibrate_fmnist(net, calib, data_bits=options.data_bits, acc_bits=options.acc_bits)[layer]
    case = cluster_case(ssk, x, quant, config, shape, net.biases.get(layer), 1, options.dsp_per_complex_mac)
    info = {"layer": layer, "provenance": f"{net.network} {layer}; {net.provenance}; input: Fashion-MNIST test image "
                                          f"{options.image_index}; formats calibrated on {calib_text}"}
    return case, info


def cluster_files(case: ClusterCase, info: dict) -> dict:
    """The Verilog, the host streams and a README (name -> text)."""
    dut = PoolCluster(case.spec)
    sh, g = case.spec.shape, case.spec.geometry
    ports = "\n".join(f"| `{n}` | {d} | {b} |" for n, d, b in port_rows(dut))
    streams = {f"input_fft{f}.hex": "".join(f"{int(b):x}\n" for b in beats) for f, beats in enumerate(case.input_beats())}
    readme = (f"# Shared FFT/IFFT pool cluster: {info['layer']}\n\nTop module `{TOP}` (`{TOP}.v`), one clock `clk`, "
              f"synchronous active-high `rst`. {sh.a_t} array columns x {sh.a_g} array rows = {sh.arrays} arrays, "
              f"{sh.fft_engines} FFT and {sh.ifft_engines} IFFT engines, N = {g.fft_size}, {g.tiles} tiles; "
              f"{pool_cycles(case.spec)} cycles from reset to `done` (host always valid, outputs always ready). "
              "Interfaces: `flexspec/rtl/INTERFACES.md`, \"Shared FFT/IFFT pool\". `input_fft<f>.hex`: the host beats "
              f"of input stream f. Data: {info['provenance']}.\n\n| port | direction | bits |\n|---|---|---|\n"
              f"{ports}\n\nVendor flow: add `{TOP}.v` to the project; every memory is inferred from plain Verilog.\n")
    return {f"{TOP}.v": to_verilog(dut, TOP), "README.md": readme, **streams}


def run_cluster(layer: str | None, options: RTLOptions, shape_text: str, out, verify: bool) -> int:
    shape = parse_shape(shape_text)
    case, info = layer_cluster_case(layer, options, shape)
    files = cluster_files(case, info)
    sh, g = case.spec.shape, case.spec.geometry
    print(f"layer {info['layer']}: pool of {sh.a_t} x {sh.a_g} arrays, {sh.fft_engines}/{sh.ifft_engines} FFT/IFFT "
          f"engines, {g.tiles} tiles, programs {[p.length for p in case.spec.row_programs]} cycles per tile; "
          f"{pool_cycles(case.spec)} cycles")
    if not verify:
        write_files(out, files)
        print(f"wrote {len(files)} files to {out}")
        return 0
    from .cluster_cosim import verilate_cluster  # amaranth + verilator, only with --verify

    r = verilate_cluster(case, DEFAULT_WORKDIR)
    want = case.expected_blocks()
    report = {"format_version": 1, "layer": info["layer"], "shape": [sh.a_t, sh.a_g, sh.fft_engines, sh.ifft_engines],
              "bit_exact": bool(np.array_equal(r["blocks"], want)), "rtl_cycles": r["cycles"],
              "simulated_cycles": pool_cycles(case.spec), "outputs_compared": int(want.size),
              "rows_received": r["writes"], "conflict": r["conflict"], "provenance": info["provenance"],
              "compared": "the IFFT blocks (block_frac) with flexspec.accel.functional.fixed_layer's trace.blocks; "
                          "cycles with flexspec.accel.pool_events.pool_cycles"}
    report["cycles_equal"] = report["rtl_cycles"] == report["simulated_cycles"]
    write_files(out, files | {"verify.json": json.dumps(report, indent=1) + "\n"})
    print(f"Verilator: {'bit-exact with' if report['bit_exact'] else 'DIFFERS FROM'} the functional model "
          f"({report['outputs_compared']} block values); {report['rtl_cycles']} cycles, pool model "
          f"{report['simulated_cycles']}")
    if not (report["bit_exact"] and report["cycles_equal"]):
        raise FlexSpecError(f"the cluster co-simulation disagrees with the functional model or the pool model "
                            f"(see {out / 'verify.json'})")
    return 0
