import pytest

from flexspec.accel.arch import AcceleratorConfig, nontrivial_twiddles, resources
from flexspec.accel.devices import list_devices, load_device
from flexspec.errors import DoesNotFitError, InputFileError, UnknownNameError

REQUIRED = {"u200", "u250", "vcu118", "zcu102", "vc709", "s10gx2800"}


def test_builtin_profiles_have_sources():
    names = {d.name for d in list_devices()}
    assert REQUIRED <= names
    u200 = load_device("u200")
    assert u200.dsp_slices == 6840 and u200.dram_channels == 4
    for d in list_devices():
        assert set(d.sources) >= {"dsp_slices", "bram_bits", "dram_bandwidth_bytes_per_s", "clock_hz"}
        assert all(s.strip() for s in d.sources.values())


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
    assert "needs" in msg and "2520" in msg
    r = resources(AcceleratorConfig(arrays=8, pes=32, banks=40), load_device("zcu102"))
    assert r.dsp_total <= 2520 and r.bram_bits_used <= load_device("zcu102").bram_bits
