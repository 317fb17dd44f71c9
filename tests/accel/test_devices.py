import re
import subprocess
import sys
from pathlib import Path

import pytest

from flexspec.accel.arch import AcceleratorConfig, nontrivial_twiddles, resources
from flexspec.devices import RESOURCE_KEYS, list_devices, load_device
from flexspec.errors import DoesNotFitError, InputFileError, UnknownNameError, UsageError

SRC = str(Path(__file__).resolve().parents[2] / "src")

REQUIRED = {"u200", "u250", "vcu118", "zcu102", "vc709", "s10gx2800"}


def test_builtin_profiles_have_sources():
    names = {d.name for d in list_devices()}
    assert REQUIRED <= names
    u200 = load_device("u200")
    assert u200.dsp_slices == 6840 and u200.dram_channels == 4
    for d in list_devices():
        assert set(d.sources) >= {"dsp_slices", "bram_bits", "dram_bandwidth_bytes_per_s", "clock_hz", "lut", "ff",
                                  "lutram_luts", "shell_reserve", "ddr_controller_reserve"}
        assert all(s.strip() for s in d.sources.values())
        assert "FlexSpec assumption" not in d.sources["clock_hz"]  # every clock names its evidence
        for k in RESOURCE_KEYS:
            assert 0 <= d.available(k) <= d.capacity(k)


def test_unknown_device_lists_known():
    with pytest.raises(UnknownNameError, match="u200"):
        load_device("nosuchboard")


def test_user_file_errors_name_file_and_field(tmp_path, monkeypatch):
    text = (load_device("u200").path and open(load_device("u200").path).read())
    bad = tmp_path / "mine.yaml"
    bad.write_text(text.replace("value: 6840", "value: -5").replace("name: u200", "name: mine"))
    with pytest.raises(InputFileError) as exc:
        load_device(str(bad))
    assert "mine.yaml" in str(exc.value) and "dsp_slices" in str(exc.value)
    good = tmp_path / "mine.yaml"
    good.write_text(text.replace("name: u200", "name: mine"))
    monkeypatch.setenv("FLEXSPEC_DEVICE_PATH", str(tmp_path))
    assert load_device("mine").dsp_slices == 6840
    assert "mine" in {d.name for d in list_devices()}


def test_twiddles_against_explicit_count():
    import numpy as np

    for n in (4, 8, 16, 32):
        count = 0
        span = 2
        while span <= n:
            for k in range(span // 2):
                w = np.exp(-2j * np.pi * k / span)
                trivial = min(abs(w - t) for t in (1, -1, 1j, -1j)) < 1e-9
                count += 0 if trivial else n // span
            span *= 2
        assert nontrivial_twiddles(n) == count


def test_design_that_does_not_fit_is_refused():
    with pytest.raises(DoesNotFitError) as exc:
        resources(AcceleratorConfig(arrays=64, pes=64), load_device("zcu102"))
    msg = str(exc.value)
    # names the resource, what the design needs and what is available (after the reserves)
    assert re.search(r"needs lut [\d,]+ .* but 266,080 are available", msg), msg
    # 64 x 64 PEs x 3 DSPs + 16 FFT engines x 8 + 16 IFFT engines x 7 (their N = 8 syntheses) + 4 output tails
    # x 3 (a_g in 1, 2, 4: IFFTs 0-3 get slices; carry address x 5 twice and tile row x 6 at 289 rows, h16t)
    assert "dsp 12,540" in msg and "2,520 are available" in msg
    # output FIFOs for 64 channels a row (512, the default, leaves the ZCU102 under the dataflow's minimum here)
    r = resources(AcceleratorConfig(arrays=2, pes=8, banks=20, fft_engines=8, ifft_engines=8, fifo_channels=64),
                  load_device("zcu102"))
    assert r.dsp_total <= 2520 and r.bram_bits_used <= load_device("zcu102").bram_bits


def _u200_text():
    return Path(load_device("u200").path).read_text()


def _drop_field(text: str, key: str) -> str:
    """The profile without field ``key`` (its line and the indented lines under it)."""
    out, skip = [], False
    for line in text.splitlines():
        if line.startswith(f"{key}:"):
            skip = True
            continue
        if skip and line.startswith("  "):
            continue
        skip = False
        out.append(line)
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("key", ["lut", "ff", "lutram_luts", "shell_reserve", "ddr_controller_reserve"])
def test_profile_without_new_field_is_refused(tmp_path, key):
    bad = tmp_path / "old.yaml"
    bad.write_text(_drop_field(_u200_text(), key).replace("name: u200", "name: old"))
    with pytest.raises(InputFileError) as exc:
        load_device(str(bad))
    assert "old.yaml" in str(exc.value) and f"field '{key}'" in str(exc.value)


def test_reserve_missing_a_resource_is_refused(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text(_u200_text().replace("dsp: 960, ", "").replace("name: u200", "name: r"))
    with pytest.raises(InputFileError, match=r"r\.yaml, field 'shell_reserve': missing resource\(s\) \['dsp'\]"):
        load_device(str(bad))


@pytest.mark.parametrize("value", [".nan", ".inf"])
def test_nan_clock_names_file_and_field(tmp_path, value):
    bad = tmp_path / "nanclock.yaml"
    text = re.sub(r"clock_hz:\n  value: [^\n]+", f"clock_hz:\n  value: {value}", _u200_text())
    bad.write_text(text.replace("name: u200", "name: nanclock"))
    with pytest.raises(InputFileError, match=r"nanclock\.yaml, field 'clock_hz': value must be a finite number"):
        load_device(str(bad))


def test_missing_device_path_folder_is_an_error(monkeypatch, tmp_path):
    missing = tmp_path / "nonexistent"
    monkeypatch.setenv("FLEXSPEC_DEVICE_PATH", str(missing))
    with pytest.raises(UsageError, match=re.escape(str(missing))):
        load_device("u200")
    with pytest.raises(UsageError, match="FLEXSPEC_DEVICE_PATH"):
        list_devices()


def test_one_bad_profile_does_not_hide_the_good_ones(monkeypatch, tmp_path):
    (tmp_path / "broken.yaml").write_text("name: [\n")
    (tmp_path / "mine.yaml").write_text(_u200_text().replace("name: u200", "name: mine"))
    monkeypatch.setenv("FLEXSPEC_DEVICE_PATH", str(tmp_path))
    problems = []
    names = {d.name for d in list_devices(problems)}
    assert names >= REQUIRED | {"mine"}
    assert len(problems) == 1 and "broken.yaml" in str(problems[0])
    with pytest.raises(InputFileError, match="broken.yaml"):
        list_devices()
    proc = subprocess.run([sys.executable, "-m", "flexspec.cli", "devices"], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": SRC, "FLEXSPEC_DEVICE_PATH": str(tmp_path)},
                          timeout=120)
    assert proc.returncode == 1
    assert "mine" in proc.stdout and "u200" in proc.stdout
    assert "broken.yaml" in proc.stderr and "Traceback" not in proc.stderr
