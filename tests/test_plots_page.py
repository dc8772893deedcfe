"""`dvc plots show` works offline: the page inlines vega (no CDN), and headless Chromium draws the lines."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from progrestore.evaluate.plots_page import PACKAGES, page_template

from .conftest import REPO

LINE = (0x94, 0x5D, 0xD6)  # the colour DVC's linear template gives the workspace's lines (#945dd6)


def _chromium() -> str | None:
    return next((shutil.which(name) for name in ("chromium", "chromium-browser") if shutil.which(name)), None)


def test_the_page_inlines_the_pinned_packages_and_loads_nothing_from_a_cdn():
    page = page_template(allow_fetch=False)  # make setup has fetched and verified the tarballs
    assert "{plot_divs}" in page and "cdn.jsdelivr.net" not in page and "<script src=" not in page
    for package in PACKAGES:
        assert f"<!-- {package.name} {package.version}" in page
    assert page.count("Redistribution and use in source and binary forms") == len(PACKAGES)  # BSD licences


@pytest.fixture(scope="module")
def plots_html(tmp_path_factory) -> Path:
    """A DVC project with this repository's plot definitions and per-frame data of two tasks."""
    root = tmp_path_factory.mktemp("plots")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "-q"], cwd=root, check=True)
    shutil.copy(REPO / ".dvc" / "config", root / ".dvc" / "config")
    (root / ".dvc" / "offline_plots.html").write_text(page_template(allow_fetch=False))
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())
    (root / "dvc.yaml").write_text(yaml.safe_dump({"vars": pipeline["vars"], "plots": pipeline["plots"]}))
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    methods = yaml.safe_load((REPO / "params.yaml").read_text())["evaluate"]["methods"]
    for metric in ("psnr", "ssim", "lpips"):
        for task in ("a", "b"):
            rows = [
                {"frame": t, **{m: 10.0 + t * (i + 1) for i, m in enumerate(methods)}} for t in range(1, 10)
            ]
            path = root / "metrics" / "per_frame" / metric / f"{task}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(rows))
    env = os.environ | {
        "NO_PROXY": "*",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }
    subprocess.run([*dvc, "plots", "show", "-o", "out"], cwd=root, check=True, env=env, capture_output=True)
    return root / "out" / "index.html"


def test_every_plot_names_its_axes(plots_html):
    html = plots_html.read_text()
    for label in ("PSNR (dB)", "SSIM", "LPIPS (lower is better)"):
        assert html.count(f'"title": "{label}"') == 6, label  # two tasks' plots, three mentions in each spec
    assert html.count('"title": "frame"') == 18
    assert '"title": "y"' not in html and "cdn.jsdelivr.net" not in html


def test_headless_chromium_draws_the_lines_offline(plots_html, tmp_path):
    chromium = _chromium()
    if chromium is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    shot = tmp_path / "page.png"
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    command += ["--proxy-server=127.0.0.1:9", "--virtual-time-budget=15000", "--window-size=1300,2600"]
    command += [f"--screenshot={shot}", plots_html.as_uri()]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    line = np.abs(pixels - np.array(LINE)).sum(axis=-1) < 40
    # three rows of plots (PSNR, SSIM, LPIPS), two tasks each: every row has its lines drawn
    per_row = [int(line[top : top + 400].sum()) for top in (0, 400, 800)]
    assert all(count > 300 for count in per_row), f"line pixels per row of plots: {per_row}"
    assert line[1300:].sum() == 0  # nothing below the six plots


def test_the_page_replaces_only_an_earlier_page_of_its_own(tmp_path):
    from progrestore.errors import InputError
    from progrestore.evaluate.plots_page import write_page_template

    mine = tmp_path / "page.html"
    write_page_template(mine, allow_fetch=False)
    write_page_template(mine, allow_fetch=False)  # an earlier page of ours is refreshed
    theirs = tmp_path / "theirs.html"
    theirs.write_text("<html>{plot_divs} my own template</html>")
    with pytest.raises(InputError, match=r"theirs\.html: exists and was not written by progrestore"):
        write_page_template(theirs, allow_fetch=False)
    assert theirs.read_text() == "<html>{plot_divs} my own template</html>"
