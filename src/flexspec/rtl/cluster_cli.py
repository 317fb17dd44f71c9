"""``flexspec rtl --cluster A_T,A_G,F,E``: generate the shared FFT/IFFT pool cluster
(``flexspec.rtl.cluster``, ending in its output tails: the layer's spatial output) for one layer of
the shipped model instead of the one-array engine; ``--verify`` co-simulates it in Verilator
against the fixed-point functional model (the layer's output, bit for bit), the pool's cycle model
(``pool_output_cycles``, to the cycle) and a float OaA convolution (within the derived bound)."""

from __future__ import annotations

import io
import json

import numpy as np

from ..accel.arch import AcceleratorConfig
from ..accel.functional import calibrate_fmnist, calibration_images, layer_error_bound
from ..accel.pool_events import pool_output_cycles
from ..errors import FlexSpecError, UnknownNameError, UsageError
from ..fileio import write_files
from ..spectral import real_model
from ..spectral.sparse import sparse_oaa_conv2d
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
    # before the work: a split the cluster cannot build
    check_shape(shape, ssk.out_channels, x.shape[1], x.shape[2], ssk.fft_size, ssk.kernel_size)
    with np.load(real_model.DATA_DIR / "fmnist_test1000.npz", allow_pickle=False) as data:
        image = data["images"][options.image_index:options.image_index + 1]
    calib, calib_text = calibration_images(image, CALIBRATION_IMAGES)
    config = AcceleratorConfig(arrays=shape.arrays, pes=options.num_pes, banks=options.num_banks, ports=options.ports,
                               fft_size=ssk.fft_size, data_bits=options.data_bits, acc_bits=options.acc_bits,
                               fft_engines=shape.fft_engines, ifft_engines=shape.ifft_engines)
    quant = calibrate_fmnist(net, calib, data_bits=options.data_bits, acc_bits=options.acc_bits)[layer]
    case = cluster_case(ssk, x, quant, config, shape, net.biases.get(layer), 1, options.dsp_per_complex_mac)
    info = {"layer": layer, "kernels": ssk, "bias": net.biases.get(layer), "input": x, "provenance": f"{net.network} {layer}; {net.provenance}; input: Fashion-MNIST test image "
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
              f"{pool_output_cycles(case.spec)} cycles from reset to `done` (host always valid, write-backs always "
              "ready). Each IFFT e ends in an output tail (overlap-add, bias, ReLU) whose write-back stream `o<e>_*` "
              "carries one block row of one output channel a beat (`o<e>_chan`, `o<e>_row`, `o<e>_col`, `o<e>_mask`: "
              f"value c is pixel (chan, row, col + c - {case.spec.geometry.offset}) when mask bit c is set; "
              f"{case.spec.quant.data_bits}-bit, {case.spec.quant.out_frac} fractional bits, after ReLU). "
              "Interfaces: `flexspec/rtl/INTERFACES.md`, \"Shared FFT/IFFT pool\". `input_fft<f>.hex`: the host beats "
              f"of input stream f. Data: {info['provenance']}.\n\n| port | direction | bits |\n|---|---|---|\n"
              f"{ports}\n\nVendor flow: add `{TOP}.v` to the project; every memory is inferred from plain Verilog.\n")
    return {f"{TOP}.v": to_verilog(dut, TOP), "README.md": readme, **streams}


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def verify_cluster(case: ClusterCase, info: dict, out) -> tuple[dict, dict]:
    """Co-simulate the cluster in Verilator; the report and the files it adds (verify.json,
    input.npy, output.npy, kernels.npz)."""
    from .cluster_cosim import verilate_cluster  # amaranth + verilator, only with --verify

    sh, g, q = case.spec.shape, case.spec.geometry, case.spec.quant
    r = verilate_cluster(case, DEFAULT_WORKDIR)
    want = case.expected_output()
    simulated = pool_output_cycles(case.spec)
    y = np.ldexp(r["output"].astype(np.float64), -q.out_frac)
    x = np.asarray(info["input"], dtype=np.float64)[None]
    ref = np.maximum(sparse_oaa_conv2d(x, info["kernels"], 1, info["bias"])[0], 0)
    bound = layer_error_bound(case.trace, x, info["kernels"], 1, info["bias"])[0] \
        + 1e-9 * (1 + float(np.abs(ref).max(initial=0.0)))
    err = np.abs(y - ref)
    report = {"format_version": 2, "layer": info["layer"], "shape": [sh.a_t, sh.a_g, sh.fft_engines, sh.ifft_engines],
              "bit_exact": bool(np.array_equal(r["output"], want)), "rtl_cycles": int(r["cycles"]),
              "simulated_cycles": int(simulated), "cycles_equal": int(r["cycles"]) == int(simulated),
              "outputs_compared": int(want.size), "pixels_written": int(r["writes"]), "beats": int(r["beats"]),
              "conflict": r["conflict"], "tiles": g.tiles,
              "program_cycles": [p.length for p in case.spec.row_programs], "provenance": info["provenance"],
              "float_max_abs_error": float(err.max(initial=0.0)), "float_bound_max": float(bound.max(initial=0.0)),
              "float_pixels_over_bound": int(np.count_nonzero(err > bound)),
              "compared": "the write-back of every IFFT's output tail (after ReLU, out_frac) with "
                          "flexspec.accel.functional.fixed_layer's y_int (after ReLU); cycles with "
                          "flexspec.accel.pool_events.pool_output_cycles",
              "output_npy": "the cluster's write-back dequantized at out_frac, after ReLU (the RTL applies ReLU "
                            "before the write-back, so the pre-ReLU values never leave it)",
              "float_reference": "ReLU of the float64 sparse spectral OaA (sparse_oaa_conv2d) of input.npy with "
                                 "kernels.npz and the bias; per-pixel bound flexspec.accel.functional.layer_error_bound"}
    kbuf = out.parent / f".{out.name}.kernels.npz"
    info["kernels"].save(kbuf)
    kbytes = kbuf.read_bytes()
    kbuf.unlink()
    files = {"verify.json": json.dumps(report, indent=1) + "\n",
             "input.npy": _npy(np.asarray(info["input"], dtype=np.float32)),
             "output.npy": _npy(y.astype(np.float32)), "kernels.npz": kbytes}
    return report, files


def run_cluster(layer: str | None, options: RTLOptions, shape_text: str, out, verify: bool) -> int:
    shape = parse_shape(shape_text)
    case, info = layer_cluster_case(layer, options, shape)
    files = cluster_files(case, info)
    sh, g = case.spec.shape, case.spec.geometry
    print(f"layer {info['layer']}: pool of {sh.a_t} x {sh.a_g} arrays, {sh.fft_engines}/{sh.ifft_engines} FFT/IFFT "
          f"engines, {g.tiles} tiles, programs {[p.length for p in case.spec.row_programs]} cycles per tile; "
          f"{pool_output_cycles(case.spec)} cycles")
    if not verify:
        write_files(out, files)
        print(f"wrote {len(files)} files to {out}")
        return 0
    report, extra = verify_cluster(case, info, out)
    write_files(out, files | extra)
    print(f"Verilator: {'bit-exact with' if report['bit_exact'] else 'DIFFERS FROM'} the functional model "
          f"({report['outputs_compared']} output pixels); {report['rtl_cycles']} cycles, pool model "
          f"{report['simulated_cycles']}; float OaA within the bound at "
          f"{report['outputs_compared'] - report['float_pixels_over_bound']} of {report['outputs_compared']} pixels")
    if not (report["bit_exact"] and report["cycles_equal"]):
        raise FlexSpecError(f"the cluster co-simulation disagrees with the functional model or the pool model "
                            f"(see {out / 'verify.json'})")
    return 0
