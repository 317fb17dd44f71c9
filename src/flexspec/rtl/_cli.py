"""``flexspec rtl``: generate the sparse PE array's Verilog, memory files and README."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "rtl",
        help="generate synthesizable Verilog of the sparse spectral PE array for one layer",
        description=(
            "Schedule one layer of the shipped Fashion-MNIST model, and write the Verilog of the P-PE sparse "
            "Hadamard-product array (B banks, R ports), memory-initialization files holding a real test tile "
            "and kernel group, the expected accumulators and cycle count, and a README naming the top module, "
            "ports and parameters. Defaults: P=4, B=4, R=1, 16-bit data, 48-bit accumulators, layer conv2_1."
        ),
    )
    p.add_argument("--layer", default=None, metavar="L", help="conv layer of fmnist_vgg (default conv2_1)")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="YAML file of options (num_pes, num_banks, ports, broadcast, bank_map, method, grouping, "
                        "data_bits, acc_bits, dsp_per_complex_mac, prune_method, density, image_index, group, tile)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write (created if missing)")
    p.add_argument("--verify", action="store_true",
                   help="also simulate the test group in Amaranth's simulator and compare bit for bit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..errors import FlexSpecError
    from .config import LATENCY_CYCLES
    from .export import write_design
    from .source import RTLOptions, group_program, layer_case

    options = RTLOptions.from_yaml(args.config) if args.config else RTLOptions()
    case = layer_case(args.layer, options)
    tile = case.default_tile()
    prog, exp_re, exp_im = group_program(case, options.group, tile)
    resolved = {"layer": case.layer, "tile": tile, "fixed_point": vars(case.fmt) | {},
                "options": options.to_dict(), "provenance": case.provenance,
                "pe_array": {k: getattr(case.pe_config, k) for k in (
                    "num_pes", "num_banks", "ports", "fft_size", "schedule_depth", "data_bits", "acc_bits",
                    "dsp_per_complex_mac", "broadcast")} | {"bank_of": list(case.pe_config.bank_of)}}
    written = write_design(args.out, case.pe_config, prog, exp_re, exp_im, case.provenance, resolved)
    c = case.pe_config
    print(f"layer {case.layer}: {case.num_groups} groups, group {options.group} on tile {tile}: makespan "
          f"{prog.makespan_cycles} cycles, done after {prog.makespan_cycles + LATENCY_CYCLES} cycles")
    print(f"P={c.num_pes} B={c.num_banks} R={c.ports} N={c.fft_size} data {c.data_bits} bits, acc {c.acc_bits} bits, "
          f"{c.multipliers} multipliers; data: {case.provenance}")
    if args.verify:
        from .cosim import simulate_groups

        r = simulate_groups(c, [prog])[0]
        ok = (np.array_equal(r.acc_re, exp_re) and np.array_equal(r.acc_im, exp_im)
              and r.measured_cycles == prog.makespan_cycles + LATENCY_CYCLES)
        print(f"RTL simulation: {'matches' if ok else 'DIFFERS FROM'} the functional model "
              f"({r.measured_cycles} cycles)")
        if not ok:
            raise FlexSpecError("the RTL simulation disagrees with the functional model (a design defect)")
    print(f"wrote {len(written)} files to {args.out}")
    return 0
