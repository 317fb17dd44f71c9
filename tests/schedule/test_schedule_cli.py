"""The `flexspec schedule` command: contract, --verify, clear errors and no half-written files."""

import numpy as np
import pytest

from flexspec.cli import main
from flexspec.schedule import Schedule, lower_bounds, validate


@pytest.fixture
def kernels(tmp_path):
    mask = np.random.default_rng(0).random((6, 16, 40)) < 0.25
    np.savez(tmp_path / "in.npz", mask=mask)
    return tmp_path / "in.npz", mask


@pytest.mark.parametrize("extra", [[], ["--broadcast"], ["--method", "inorder", "--bank-map", "auto"],
                                   ["--method", "greedy", "--ports", "2"], ["--method", "broadcast"]])
def test_schedule_command(tmp_path, kernels, capsys, extra):
    path, mask = kernels
    out = tmp_path / "out.npz"
    code = main(["schedule", "--kernels", str(path), "--banks", "16", "--out", str(out), "--verify", *extra])
    assert code == 0
    assert "verified" in capsys.readouterr().out
    s = Schedule.load(out)
    validate(s, mask)
    with np.load(out) as data:
        for key in ("group", "pe", "index", "cycle", "bank_of", "cycles", "lower_bound", "format_version",
                    "banks", "ports", "broadcast", "method"):
            assert key in data.files
        assert data["bank_of"].shape == (40,) and data["cycles"].shape == (6,)
    if not extra:
        assert s.method == "optimal" and np.array_equal(s.cycles, lower_bounds(mask, s.bank_of, 16, 1))
    if "--broadcast" in extra:
        assert s.method == "broadcast" and s.broadcast


@pytest.mark.parametrize(
    "content,args,message",
    [
        (dict(mask=np.zeros((2, 4, 40), np.int8)), [], "boolean"),
        (dict(mask=np.zeros((4, 40), bool)), [], "rank 3"),
        (dict(mask=np.zeros((2, 4, 41), bool)), [], "N\\*\\(N//2\\+1\\)"),
        (dict(other=np.zeros((2, 4, 40), bool)), [], "'mask'"),
        (dict(mask=np.zeros((2, 4, 40), bool)), ["--banks", "0"], "banks"),
        (dict(mask=np.zeros((2, 4, 40), bool)), ["--ports", "0"], "ports"),
    ],
)
def test_bad_input_clear_error_and_no_output(tmp_path, capsys, content, args, message):
    np.savez(tmp_path / "in.npz", **content)
    out = tmp_path / "out.npz"
    argv = ["schedule", "--kernels", str(tmp_path / "in.npz"), "--banks", "4", "--out", str(out), *args]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("flexspec: error:") and len(err.strip().splitlines()) == 1
    assert pytest.importorskip("re").search(message, err)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["in.npz"]


def test_missing_input_file(tmp_path, capsys):
    code = main(["schedule", "--kernels", str(tmp_path / "nope.npz"), "--banks", "4", "--out", str(tmp_path / "o.npz")])
    assert code == 2 and "nope.npz" in capsys.readouterr().err


def test_missing_output_folder(tmp_path, kernels, capsys):
    path, _ = kernels
    code = main(["schedule", "--kernels", str(path), "--banks", "4", "--out", str(tmp_path / "no" / "o.npz")])
    assert code == 2 and "does not exist" in capsys.readouterr().err
