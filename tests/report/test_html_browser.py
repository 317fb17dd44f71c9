"""report.html in a real headless browser (Debian's chromium): it renders, with its figures."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


@pytest.mark.skipif(CHROMIUM is None, reason="no headless browser: install Debian's chromium "
                                             "(apt-get install -y chromium) to check report.html")
def test_report_renders_in_chromium(tiny_report, tmp_path):
    import matplotlib.image as mpimg
    import numpy as np

    from flexspec.report import write_report

    write_report(tiny_report, tmp_path / "out")
    shot = tmp_path / "shot.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--no-first-run", "--hide-scrollbars", "--window-size=1280,2400",
           f"--screenshot={shot}", (tmp_path / "out" / "report.html").as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
    assert shot.exists(), proc.stderr[-2000:]
    keep = os.environ.get("FLEXSPEC_KEEP_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
    img = mpimg.imread(shot)
    assert img.shape[0] >= 2000 and img.shape[1] >= 1200
    rgb = img[..., :3]
    # not a blank page: enough non-white pixels, and colour (the figures) rather than only black text
    nonwhite = (rgb < 0.95).any(axis=-1).mean()
    colourful = (np.ptp(rgb, axis=-1) > 0.2).mean()
    assert nonwhite > 0.05, nonwhite
    assert colourful > 0.01, colourful
