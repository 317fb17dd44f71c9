"""The README's first commands are the two set-up lines, CI runs the second, and the Python API example
of the main-job section names only what exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def _blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_first_two_command_lines_are_the_setup_commands():
    first = [line for line in _blocks("bash")[0].splitlines() if line.strip()]
    assert first[0] == "pip install . && flexspec run"
    assert first[1].startswith('pip install') and '-e ".[test]"' in first[1] and "pytest" in first[1]
    ci = (ROOT / ".ci" / "run").read_text()
    m = re.search(r'test_cmd="\$\((awk .*? README\.md)\)"', ci)
    assert m, "CI no longer extracts the test command from the README"
    import subprocess

    got = subprocess.run(["bash", "-c", m.group(1)], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert got.strip() == first[1], "CI would not run the README's second line"


def test_main_job_section_and_python_example():
    assert "## The main job: flexspec run" in README
    section = README.split("## The main job: flexspec run", 1)[1].split("\n## ", 1)[0]
    code = _blocks("python")
    example = [c for c in code if "flexspec.run(" in c and c in section]
    assert example, "no Python API example in the main-job section"
    tree = ast.parse(example[0])
    import flexspec
    from flexspec.pipeline import RunReport

    assert callable(flexspec.run)
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name) and n.value.id == "report"}
    assert used and all(hasattr(RunReport, a) for a in used), used
    for name in ("report.json", "layers.csv", "report.html", "latency_seconds", "speedup_ratio",
                 "traffic_reduction_fraction", "dsp_efficiency_fraction", "configuration"):
        assert name in section, name
