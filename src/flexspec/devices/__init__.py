"""Device profiles: one YAML file per board with the public datasheet figures.

Built-in profiles live beside this module (``flexspec/devices/*.yaml``).  Users add their own: pass a path to
``load_device`` (or ``--device my_board.yaml`` on the command line), or put files in a folder
named by the environment variable ``FLEXSPEC_DEVICE_PATH`` (``os.pathsep``-separated folders);
``list_devices()`` and ``flexspec devices`` show them all.

Each figure is a mapping ``{value: ..., source: "..."}`` naming the document it comes from.
Validation errors name the file and the field.  Besides DSPs, block RAM, UltraRAM, DRAM and the
clock, a profile gives the logic (``lut``, ``ff``, ``lutram_luts``: LUTs that can be distributed
RAM or shift registers) and what the design cannot use: ``shell_reserve`` (the platform shell
or host interface) and ``ddr_controller_reserve`` (one DRAM controller, counted
``dram_channels`` times), each a ``{value: {lut: .., ff: .., lutram_luts: .., dsp: ..,
bram_bits: .., uram_bits: ..}, source: ".."}`` mapping.  :meth:`Device.available` is what is
left for the accelerator.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import InputFileError, UnknownNameError, UsageError

FORMAT_VERSION = 1
_BUILTIN_DIR = Path(__file__).resolve().parent
ENV_PATH = "FLEXSPEC_DEVICE_PATH"

#: numeric fields: name -> (type, minimum (inclusive), maximum or None)
_FIGURES = {
    "dsp_slices": (int, 1, None),
    "bram_bits": (int, 0, None),
    "uram_bits": (int, 0, None),
    "dram_channels": (int, 1, None),
    "dram_bandwidth_bytes_per_s": (float, 1e6, None),
    "burst_efficiency": (float, 0.01, 1.0),
    "clock_hz": (float, 1e6, 5e9),
    "dsp_per_complex_mac": (int, 1, 8),
    "lut": (int, 1, None),
    "ff": (int, 1, None),
    "lutram_luts": (int, 0, None),
}
#: reserve fields (mappings of resource -> amount) and the resources each must name
_RESERVES = ("shell_reserve", "ddr_controller_reserve")
RESOURCE_KEYS = ("lut", "ff", "lutram_luts", "dsp", "bram_bits", "uram_bits")
_TEXT = ("name", "vendor", "family", "part")


@dataclass(frozen=True)
class Device:
    """One FPGA board as the accelerator model sees it (figures are the whole board/device)."""

    name: str
    vendor: str
    family: str
    part: str
    dsp_slices: int
    bram_bits: int
    uram_bits: int
    dram_channels: int
    dram_bandwidth_bytes_per_s: float  # total peak over all channels
    burst_efficiency: float  # sustained / peak for long sequential bursts
    clock_hz: float
    dsp_per_complex_mac: int
    lut: int
    ff: int
    lutram_luts: int
    shell_reserve: dict = field(hash=False)  # resource -> amount the platform shell takes
    ddr_controller_reserve: dict = field(hash=False)  # resource -> amount of one DRAM controller
    sources: dict = field(default_factory=dict, compare=False, hash=False)
    path: str = field(default="", compare=False)

    @property
    def onchip_bits(self) -> int:
        return self.bram_bits + self.uram_bits

    @property
    def onchip_bytes(self) -> int:
        return self.onchip_bits // 8

    @property
    def sustained_bandwidth_bytes_per_s(self) -> float:
        return self.dram_bandwidth_bytes_per_s * self.burst_efficiency

    @property
    def bytes_per_cycle(self) -> float:
        """Sustained off-chip bytes per accelerator clock cycle."""
        return self.sustained_bandwidth_bytes_per_s / self.clock_hz

    @property
    def peak_complex_macs_per_cycle(self) -> int:
        return self.dsp_slices // self.dsp_per_complex_mac

    def capacity(self, resource: str) -> int:
        """The whole device's amount of ``resource`` (one of RESOURCE_KEYS)."""
        return {"lut": self.lut, "ff": self.ff, "lutram_luts": self.lutram_luts, "dsp": self.dsp_slices,
                "bram_bits": self.bram_bits, "uram_bits": self.uram_bits}[resource]

    def reserved(self, resource: str) -> int:
        """What the platform shell and the ``dram_channels`` DRAM controllers take of ``resource``."""
        return int(self.shell_reserve.get(resource, 0)
                   + self.dram_channels * self.ddr_controller_reserve.get(resource, 0))

    def available(self, resource: str) -> int:
        """What is left of ``resource`` for the accelerator (capacity minus reserves)."""
        return max(0, self.capacity(resource) - self.reserved(resource))

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in _TEXT + tuple(_FIGURES) + _RESERVES}
        d["available"] = {k: self.available(k) for k in RESOURCE_KEYS}
        d["sources"] = dict(self.sources)
        return d


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputFileError(path, f"cannot read device profile: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputFileError(path, "not valid YAML: " + " ".join(str(exc).split())) from None
    if not isinstance(data, dict):
        raise InputFileError(path, "a device profile must be a YAML mapping of fields")
    return data


def _figure(path: Path, data: dict, key: str):
    """(value, source) of the ``{value, source}`` figure ``key``; errors name the file and field."""
    if key not in data:
        raise InputFileError(path, "missing field (give {value: ..., source: \"...\"} naming the datasheet)", key)
    item = data[key]
    if not isinstance(item, dict) or "value" not in item or "source" not in item:
        raise InputFileError(path, "must be a mapping with 'value' and 'source' (the datasheet it comes from)", key)
    source = item["source"]
    if not isinstance(source, str) or not source.strip():
        raise InputFileError(path, "'source' must name the datasheet or say it is an assumption", key)
    return item["value"], source.strip()


def _number(path: Path, key: str, value, kind, lo, hi):
    if isinstance(value, str):  # YAML 1.1 reads '76.8e9' (no exponent sign) as a string
        try:
            value = float(value.replace("_", ""))
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputFileError(path, f"value must be a number, got {value!r}", key)
    if not math.isfinite(value):
        raise InputFileError(path, f"value must be a finite number, got {value!r}", key)
    if kind is int:
        if float(value) != int(value):
            raise InputFileError(path, f"value must be an integer, got {value!r}", key)
        value = int(value)
    else:
        value = float(value)
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" + (f" and <= {hi}" if hi is not None else "")
        raise InputFileError(path, f"value {value!r} out of range (must be {rng})", key)
    return value


def _parse(path: Path, data: dict) -> Device:
    version = data.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise InputFileError(path, f"format_version {version!r} is not supported (expected {FORMAT_VERSION})",
                             "format_version")
    known = set(_TEXT) | set(_FIGURES) | set(_RESERVES) | {"format_version"}
    extra = sorted(set(data) - known)
    if extra:
        raise InputFileError(path, f"unknown field(s) {extra}; known fields: {sorted(known)}", extra[0])
    values, sources = {}, {}
    for key in _TEXT:
        if key not in data:
            raise InputFileError(path, "missing field", key)
        if not isinstance(data[key], str) or not data[key].strip():
            raise InputFileError(path, f"must be a non-empty string, got {data[key]!r}", key)
        values[key] = data[key].strip()
    for key, (kind, lo, hi) in _FIGURES.items():
        value, sources[key] = _figure(path, data, key)
        values[key] = _number(path, key, value, kind, lo, hi)
    for key in _RESERVES:
        value, sources[key] = _figure(path, data, key)
        if not isinstance(value, dict):
            raise InputFileError(path, f"value must be a mapping of {', '.join(RESOURCE_KEYS)} to amounts, "
                                       f"got {value!r}", key)
        unknown = sorted(set(value) - set(RESOURCE_KEYS))
        if unknown:
            raise InputFileError(path, f"unknown resource(s) {unknown}; known: {', '.join(RESOURCE_KEYS)}", key)
        missing = [r for r in RESOURCE_KEYS if r not in value]
        if missing:
            raise InputFileError(path, f"missing resource(s) {missing} (give 0 where none is taken)", key)
        values[key] = {r: _number(path, f"{key}.{r}", value[r], int, 0, None) for r in RESOURCE_KEYS}
    for r in RESOURCE_KEYS:
        cap = {"dsp": values["dsp_slices"]}.get(r, values.get(r))
        taken = values["shell_reserve"][r] + values["dram_channels"] * values["ddr_controller_reserve"][r]
        if taken > cap:
            raise InputFileError(path, f"the shell and {values['dram_channels']} DRAM controller(s) reserve {taken} "
                                       f"{r} but the device has {cap}", "shell_reserve")
    if values["lutram_luts"] > values["lut"]:
        raise InputFileError(path, f"lutram_luts {values['lutram_luts']} exceeds lut {values['lut']}", "lutram_luts")
    return Device(**values, sources=sources, path=str(path))


def _search_dirs() -> list[Path]:
    """Built-in folder, then each folder of FLEXSPEC_DEVICE_PATH; a folder that does not exist
    is an error naming it (a typo there would otherwise hide the user's profiles silently)."""
    dirs = [_BUILTIN_DIR]
    for entry in os.environ.get(ENV_PATH, "").split(os.pathsep):
        if entry.strip():
            folder = Path(entry).expanduser()
            if not folder.is_dir():
                raise UsageError(f"{ENV_PATH} names '{folder}', which is not an existing folder; fix or unset it")
            dirs.append(folder)
    return dirs


def _profile_files() -> dict[str, Path]:
    """Short name -> file; user folders override built-ins of the same name."""
    files = {}
    for folder in _search_dirs():
        for f in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
            files[f.stem] = f
    return files


def load_device(name_or_path) -> Device:
    """A device by short name (``u200``) or from a YAML file path."""
    if isinstance(name_or_path, Device):
        return name_or_path
    text = str(name_or_path)
    path = Path(text).expanduser()
    if text.endswith((".yaml", ".yml")) or os.sep in text:
        if not path.is_file():
            raise InputFileError(path, "device profile file not found")
        return _parse(path, _read_yaml(path))
    files = _profile_files()
    if text not in files:
        raise UnknownNameError("device", text, files)
    device = _parse(files[text], _read_yaml(files[text]))
    if device.name != text:
        raise InputFileError(files[text], f"name '{device.name}' differs from the file name '{text}'", "name")
    return device


def list_devices(problems: list | None = None) -> list[Device]:
    """Every known device (built-in and from FLEXSPEC_DEVICE_PATH), sorted by name.

    With ``problems`` (a list), a profile that fails to load is skipped and its error (naming
    the file and field) appended there, so one bad file does not hide the good ones; without
    it, the first bad profile raises."""
    out = []
    for name in sorted(_profile_files()):
        try:
            out.append(load_device(name))
        except InputFileError as exc:
            if problems is None:
                raise
            problems.append(exc)
    return out
