"""SPACE.yaml: what it accepts, and one error naming the file and the field for what it does not."""

from __future__ import annotations

import itertools

import pytest
import yaml

from flexspec.errors import InputFileError
from flexspec.explore import load_space


def _write(tmp_path, data, name="space.yaml"):
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return p


GOOD = {"models": ["fmnist_vgg"], "devices": ["u200", "zcu102"], "fft_size": [8], "density": [0.25, 0.5],
        "prune_scope": "layer", "design": {"arrays": ["fit", 4], "pes": [16, 32], "banks": [20, 41],
                                            "ports": [1, 2], "broadcast": [False, True]},
        "objectives": ["latency", "dsp", "bram"], "constraints": {"latency": {"max": 0.01}}}


def test_points_are_the_product_of_the_axes_minus_impossible_ones(tmp_path):
    sp = load_space(_write(tmp_path, GOOD))
    combos = list(itertools.product(["u200", "zcu102"], [0.25, 0.5], ["fit", 4], [16, 32], [20, 41], [1, 2],
                                    [False, True]))
    pts = sp.points()
    # N = 8 has F = 40 frequencies: the 41-bank half cannot be built and is listed with its reason
    assert len(pts) + len(sp.invalid) == len(combos)
    assert len(pts) == len([c for c in combos if c[4] == 20])
    assert all("41 banks exceed the 40 frequencies" in why for _, why in sp.invalid)
    assert {(p.device, p.density, p.arrays, p.pes, p.banks, p.ports, p.broadcast) for p in pts} == \
        {c for c in combos if c[4] == 20}
    ids = [p.point_id for p in pts]
    assert len(set(ids)) == len(ids)
    # stable: the same point has the same id in another load (resume relies on it), a dict works too
    again = load_space(GOOD)
    assert [p.point_id for p in again.points()] == ids


@pytest.mark.parametrize("patch, field, words", [
    ({"colour": ["red"]}, "colour", "unknown axis 'colour'"),
    ({"design": {"pes": [16], "lanes": [2]}}, "design.lanes", "unknown axis 'lanes'"),
    ({"models": ["fmnist_vgg", "nope"]}, "models[1]", "unknown model 'nope'"),
    ({"devices": ["u200", "nope"]}, "devices[1]", "unknown device 'nope'"),
    ({"prune_scope": ["layer", "channel"]}, "prune_scope[1]", "unknown value 'channel'"),
    ({"objectives": ["latency", "power"]}, "objectives[1]", "unknown objective 'power'"),
    ({"constraints": {"latency": {"below": 1}}}, "constraints.latency", "{max: X}"),
    ({"constraints": {"watts": {"max": 1}}}, "constraints.watts", "unknown metric"),
    ({"density": [0.25, 2]}, "density[1]", "out of range"),
    ({"density": ["a lot"]}, "density[0]", "must be a number"),
    ({"fft_size": [8, 3]}, "fft_size[1]", "--fft-size 3 is out of range"),
    ({"design": {"pes": [16, 0]}}, "design.pes[1]", "integer >= 1"),
    ({"design": {"arrays": ["most"]}}, "design.arrays[0]", "'fit'"),
    ({"design": {"broadcast": ["yes"]}}, "design.broadcast[0]", "true or false"),
    ({"design": {"pes": []}}, "design.pes", "is empty"),
    ({"devices": []}, "devices", "is empty"),
    ({"seed": -1}, "seed", "non-negative"),
])
def test_bad_field_names_file_and_field(tmp_path, patch, field, words):
    path = _write(tmp_path, {**GOOD, **patch})
    with pytest.raises(InputFileError) as exc:
        load_space(path)
    msg = str(exc.value)
    assert msg.startswith(f"{path}, field '{field}'"), msg
    assert words in msg, msg
    assert exc.value.exit_code == 2
    assert "\n" not in msg


@pytest.mark.parametrize("text, words", [
    ("", "empty space"),
    ("models: [fmnist_vgg]\n", "missing"),
    ("models: [fmnist_vgg\n", "not valid YAML"),
    ("models: [fmnist_vgg]\ndevices: [u200]\ndesign: {banks: [41, 50]}\n", "empty space: none of its 2"),
    ("models: [vgg16_cifar]\ndevices: [u200]\nobjectives: [latency, accuracy]\n", "accuracy is known only"),
])
def test_empty_or_malformed_space(tmp_path, text, words):
    path = _write(tmp_path, text)
    with pytest.raises(InputFileError) as exc:
        load_space(path)
    assert str(exc.value).startswith(str(path)) and words in str(exc.value), str(exc.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        load_space(tmp_path / "absent.yaml")


def test_the_cache_is_the_explore_folder_of_flexspec_cache_dir(monkeypatch, tmp_path):
    from flexspec.explore.cache import default_cache_dir

    monkeypatch.setenv("FLEXSPEC_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c" / "explore"
    monkeypatch.setenv("FLEXSPEC_CACHE_DIR", "off")
    assert default_cache_dir() is None
    monkeypatch.delenv("FLEXSPEC_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "flexspec" / "explore"
