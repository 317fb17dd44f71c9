"""Where the generated hardware's test data comes from: a layer of the shipped real model.

:class:`RTLOptions` is the user configuration (YAML file of ``flexspec rtl --config``).
:func:`layer_case` loads the layer's pruned spectral kernels, runs one real Fashion-MNIST test
image through the preceding layers (numpy, sparse spectral convolution), cuts the layer input
into OaA tiles, schedules the layer's kernel groups and quantizes tiles and kernels with one
power-of-two scale each per layer, and builds the layer's program: every kernel group of one
tile pass, back to back, accumulating into output-channel slots (:func:`layer_groups`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from ..accel.fixed_point import FixedPointFormat
from ..schedule import schedule_layer
from ..spectral import real_model
from ..spectral.geometry import num_frequencies, tile_size
from ..spectral.sparse import sparse_oaa_conv2d
from ..errors import InputFileError, UnknownNameError, UsageError
from .config import MAX_BANKS, MAX_PES, MAX_PORTS, PEArrayConfig
from .engine_case import layer_program
from .program import Program, build_program, program_length

DEFAULT_LAYER = "conv2_1"


@dataclass(frozen=True)
class RTLOptions:
    """What to generate (every field has a small default that runs in seconds)."""

    num_pes: int = 4
    num_banks: int = 4
    ports: int = 1
    broadcast: bool = False
    bank_map: str = "auto"
    method: str | None = None  # scheduler; None = the scheduler's default
    grouping: str = "balanced"
    data_bits: int = 16
    acc_bits: int = 48
    dsp_per_complex_mac: int = 3
    prune_method: str = "magnitude"  # which shipped pruned model
    density: float = 0.25
    image_index: int = 0  # Fashion-MNIST test image that produces the layer input
    tile: int | None = None  # tile index for single-tile checks; None = the tile with the most energy
    # the layer engine's blocking (flexspec.rtl.engine_case.EngineBlocking; 0 = the whole extent)
    cout_block: int = 0
    cin_block: int = 0
    tile_block: int = 0
    loop_order: str = "oit"

    @classmethod
    def from_yaml(cls, path) -> RTLOptions:
        import yaml

        try:
            with open(path) as fh:
                data = yaml.safe_load(fh)
        except FileNotFoundError:
            raise InputFileError(path, "file not found") from None
        except (OSError, yaml.YAMLError) as exc:
            raise InputFileError(path, f"not readable YAML ({exc})") from None
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise InputFileError(path, "expected a mapping of option: value")
        known = {f.name: f for f in fields(cls)}
        kwargs = {}
        for key, value in data.items():
            if key not in known:
                raise InputFileError(path, f"unknown option; known: {', '.join(sorted(known))}", str(key))
            default = getattr(cls, key)
            if isinstance(default, bool) and not isinstance(value, bool):
                raise InputFileError(path, f"must be true or false, got {value!r}", key)
            if isinstance(default, int) and not isinstance(default, bool) and (
                    not isinstance(value, int) or isinstance(value, bool)):
                raise InputFileError(path, f"must be an integer, got {value!r}", key)
            if key == "density" and not isinstance(value, (int, float)):
                raise InputFileError(path, f"must be a number, got {value!r}", key)
            kwargs[key] = value
        try:
            return cls(**kwargs)
        except UsageError as exc:
            raise InputFileError(path, str(exc)) from None

    def __post_init__(self):
        for name in ("num_pes", "num_banks", "ports"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("cout_block", "cin_block", "tile_block"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name} must be >= 0 (0: the whole extent), got {getattr(self, name)}")
        if not isinstance(self.loop_order, str) or sorted(self.loop_order) != ["i", "o", "t"]:
            raise UsageError(f"loop_order must be a permutation of 'oit', got {self.loop_order!r}")

    @property
    def blocked(self) -> bool:
        return bool(self.cout_block or self.cin_block or self.tile_block)
        if self.num_pes > MAX_PES or self.num_banks > MAX_BANKS or self.ports > MAX_PORTS:
            raise UsageError(f"the generator builds num_pes <= {MAX_PES}, num_banks <= {MAX_BANKS}, "
                             f"ports <= {MAX_PORTS}; got {self.num_pes}, {self.num_banks}, {self.ports}")
        FixedPointFormat(data_bits=self.data_bits, acc_bits=self.acc_bits,
                         dsp_per_complex_mac=self.dsp_per_complex_mac)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class LayerCase:
    """One layer ready for the hardware: schedule, float and quantized kernels and tiles, the
    PE array configuration and the layer's program (every kernel group of one tile pass)."""

    layer: str
    provenance: str
    options: RTLOptions
    layer_schedule: object  # flexspec.schedule.LayerSchedule
    fmt: FixedPointFormat
    mask: np.ndarray  # bool [Cout, Cin, F]: the pruned kernels' non-zeros
    kernels: object  # the layer's SparseSpectralKernels
    bias: np.ndarray  # float [Cout]
    input_float: np.ndarray  # float32 [Cin, H, W]: the layer's spatial input
    kernel_float: np.ndarray  # complex [Cout, Cin, F] (pruned)
    tile_float: np.ndarray  # complex [Cin, T, F]
    kernel_re: np.ndarray  # int64 [Cout, Cin, F]
    kernel_im: np.ndarray
    tile_re: np.ndarray  # int64 [Cin, T, F]
    tile_im: np.ndarray
    pe_config: PEArrayConfig
    groups: tuple  # GroupSpec per kernel group, in schedule order (input channel major)
    program: Program

    @property
    def num_groups(self) -> int:
        return int(self.layer_schedule.groups.shape[0])

    @property
    def num_tiles(self) -> int:
        return int(self.tile_re.shape[1])

    def tile(self, t: int):
        """(re, im) int64 [Cin, F] of tile t."""
        if not 0 <= t < self.num_tiles:
            raise UsageError(f"tile {t} out of range 0..{self.num_tiles - 1}")
        return self.tile_re[:, t], self.tile_im[:, t]

    def default_tile(self) -> int:
        if self.options.tile is not None:
            if not 0 <= self.options.tile < self.num_tiles:
                raise UsageError(f"tile {self.options.tile} out of range 0..{self.num_tiles - 1}")
            return int(self.options.tile)
        energy = (self.tile_re.astype(np.float64) ** 2 + self.tile_im.astype(np.float64) ** 2).sum(axis=(0, 2))
        return int(np.argmax(energy))


def _load_network(options: RTLOptions):
    """The shipped pruned model (``flexspec/data``) at the requested pruning method and density."""
    path = real_model.pruned_file(options.prune_method, options.density)
    if not path.exists():
        raise InputFileError(path, "the shipped pruned model is missing (prune_method/density not shipped?)")
    return real_model.load_pruned(options.prune_method, options.density)


def _layer_input(net, layer: str, image_index: int) -> np.ndarray:
    """float32 [Cin, H, W]: the input of ``layer`` for one real test image."""
    data_file = real_model.DATA_DIR / "fmnist_test1000.npz"
    with np.load(data_file, allow_pickle=False) as data:
        images = data["images"]
    if not 0 <= image_index < len(images):
        raise UsageError(f"image_index must be 0..{len(images) - 1}, got {image_index}")
    h = images[image_index][None, None].astype(np.float32) / 255.0
    for block, widths in enumerate(real_model.WIDTHS, 1):
        for i in range(1, len(widths) + 1):
            name = f"conv{block}_{i}"
            if name == layer:
                return h[0]
            h = np.maximum(sparse_oaa_conv2d(h, net.layers[name], padding=1, bias=net.biases.get(name)), 0)
        h = real_model._maxpool2(h)
    raise UnknownNameError("layer", layer, real_model.CONV_NAMES)


def input_tiles(x: np.ndarray, kernel_size: int, fft_size: int) -> np.ndarray:
    """complex [Cin, T, F]: rfft2 of each h x h tile (unpadded input, zero-padded to N x N)."""
    h = tile_size(fft_size, kernel_size)
    cin, H, W = x.shape
    ty, tx = -(-H // h), -(-W // h)
    padded = np.zeros((cin, ty * h, tx * h), dtype=np.float64)
    padded[:, :H, :W] = x
    tiles = padded.reshape(cin, ty, h, tx, h).transpose(0, 1, 3, 2, 4).reshape(cin, ty * tx, h, h)
    spec = np.fft.rfft2(tiles, s=(fft_size, fft_size))
    return spec.reshape(cin, ty * tx, num_frequencies(fft_size))


def layer_groups(layer_schedule, kernel_re, kernel_im) -> tuple:
    """GroupSpec of every kernel group: its table, input channel, and PE p -> output channel j
    (the accumulator slot is the output channel itself: balanced grouping puts a channel on
    different PEs for different input channels)."""
    return layer_program(layer_schedule, kernel_re, kernel_im, layer_schedule.in_channels)


def layer_case(layer: str | None = None, options: RTLOptions | None = None) -> LayerCase:
    """Schedule and quantize one layer of the shipped real model for the hardware."""
    options = options or RTLOptions()
    layer = layer or DEFAULT_LAYER
    if layer not in real_model.CONV_NAMES:
        raise UnknownNameError("layer", layer, real_model.CONV_NAMES)
    net = _load_network(options)
    ssk = net.layers[layer]
    F = ssk.num_frequencies
    mask = ssk.mask()
    wf = ssk.dense().reshape(ssk.out_channels, ssk.in_channels, F) * mask
    x = _layer_input(net, layer, options.image_index)
    tiles = input_tiles(x, ssk.kernel_size, ssk.fft_size)
    fmt = FixedPointFormat.for_values(tiles, wf, options.data_bits, options.acc_bits, options.dsp_per_complex_mac)
    kr, ki = fmt.quantize_kernel(wf)
    kr, ki = kr * mask, ki * mask
    tr, ti = fmt.quantize_tile(tiles)
    ls = schedule_layer(mask, options.num_pes, options.num_banks, options.ports, options.broadcast,
                        options.bank_map, options.method, options.grouping)
    sched = ls.schedule
    groups = layer_groups(ls, kr, ki)
    pe_config = PEArrayConfig(
        num_pes=options.num_pes, num_banks=options.num_banks, ports=options.ports, fft_size=ssk.fft_size,
        bank_of=tuple(int(b) for b in sched.bank_of), schedule_depth=program_length(sched.cycles),
        in_channels=ssk.in_channels, acc_channels=ssk.out_channels,
        data_bits=options.data_bits, acc_bits=options.acc_bits,
        dsp_per_complex_mac=options.dsp_per_complex_mac, broadcast=options.broadcast,
    )
    program = build_program(pe_config, groups)
    provenance = f"{net.network} {layer}, {net.method or options.prune_method} pruning, density " \
                 f"{options.density}; {net.provenance}; input: Fashion-MNIST test image {options.image_index}"
    return LayerCase(layer, provenance, options, ls, fmt, mask, ssk,
                     np.asarray(net.biases.get(layer, np.zeros(ssk.out_channels)), dtype=np.float64), x, wf, tiles, kr, ki, tr, ti, pe_config, groups, program)
