"""CI metric gates: pass on good metrics, fail on planted regressions, missing or empty files."""

from __future__ import annotations

import copy
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from progrestore.cli import main

from .conftest import REPO

FRAMES = 9


def _curves(start: float, end: float, exact_end: bool = False) -> dict[str, list[float]]:
    psnr = [start + (end - start) * t / (FRAMES - 1) for t in range(FRAMES)]
    ssim = [0.5 + 0.4 * t / (FRAMES - 1) for t in range(FRAMES)]
    lpips = [0.5 - 0.4 * t / (FRAMES - 1) for t in range(FRAMES)]
    if exact_end:
        psnr[-1], ssim[-1], lpips[-1] = math.inf, 1.0, 0.0
    return {"psnr": psnr, "ssim": ssim, "lpips": lpips}


def _report(classical_end: float = 14.0, against_end: float = 20.0) -> dict:
    per_frame = {
        "oracle": _curves(8.0, 30.0, exact_end=True),
        "identity": {k: [v[0]] * FRAMES for k, v in _curves(8.0, 8.0).items()},
        "classical": {k: [v[-1]] * FRAMES for k, v in _curves(classical_end, classical_end).items()},
        "vae": _curves(8.0, 28.0),
        "model": _curves(8.0, 12.0),
    }
    against = {"model_vs_vae": _curves(15.0, against_end)}
    return {
        "per_frame": per_frame,
        "final": {m: {k: s[-1] for k, s in c.items()} for m, c in per_frame.items()},
        "against": {n: {k: s[-1] for k, s in c.items()} for n, c in against.items()},
        "against_per_frame": against,
    }


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())  # names the metrics folder
    (tmp_path / "metrics").mkdir()
    for task in params["tasks"]:
        _write(tmp_path, task, _report())
    return tmp_path


def _write(workspace: Path, task: str, report: dict) -> None:
    """``report`` ({final, per_frame[, profile]}) as the evaluate stage lays it out: the numbers in
    metrics/<task>.json, the per-frame rows in metrics/per_frame/<metric>/<task>.json, the profile in about.json."""
    from progrestore.evaluate.metrics import get
    from progrestore.evaluate.progression import progression
    from progrestore.evaluate.report import finite_or_null, plot_rows, strict

    final = {m: {k: finite_or_null(v) for k, v in per.items()} for m, per in report["final"].items()}
    trends = {
        m: {k: progression(series, get(k)) for k, series in per.items()}
        for m, per in report["per_frame"].items()
    }
    numbers = {"clips": 2, "final": final, "progression": strict(trends)}
    if "against" in report:
        numbers["against"] = report["against"]
    (workspace / "metrics" / f"{task}.json").write_text(json.dumps(numbers, allow_nan=False))
    columns = report["per_frame"] | report.get("against_per_frame", {})
    for metric in ("psnr", "ssim", "lpips"):
        path = workspace / "metrics" / "per_frame" / metric / f"{task}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(plot_rows(columns, metric)))
    (workspace / "metrics" / task).mkdir(exist_ok=True)
    (workspace / "metrics" / task / "about.json").write_text(json.dumps({"profile": report.get("profile")}))


def _gate(*extra: str) -> int:
    return main(["gate", *extra])


def test_a_model_margin_applies_to_its_profile_only(workspace, capsys):
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["gates"]["margin_over_identity"]["model@cogvideox1.5-5b-i2v"] = {"sr": 5.0}
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    report = _report() | {"profile": "tiny"}
    _write(workspace, "sr", report)
    assert _gate() == 0  # a tiny run is not held to the 5B margin
    _write(workspace, "sr", report | {"profile": "cogvideox1.5-5b-i2v"})
    assert _gate() == 1  # the model gains 4 dB over identity, the 5B profile must gain 5
    assert re.search(r"sr/model psnr\s+\+4\.000 dB\s+>= \+5\.000 dB\s+FAIL", capsys.readouterr().out)


def test_good_metrics_pass(workspace, capsys):
    assert _gate() == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and "lowlight/classical psnr  +6.000 dB" in out


def test_planted_regression_below_the_identity_margin_fails(workspace, capsys):
    _write(workspace, "lowlight", _report(classical_end=9.0))
    assert _gate() == 1
    assert "lowlight/classical psnr  +1.000 dB" in capsys.readouterr().out


def test_oracle_that_does_not_end_clean_fails(workspace, capsys):
    report = _report()
    report["per_frame"]["oracle"]["lpips"][-1] = 0.01
    _write(workspace, "sr", report)
    assert _gate() == 1
    assert "FAIL" in capsys.readouterr().out


def test_an_oracle_close_to_clean_fails_on_the_oracle_row_alone(workspace, capsys):
    """45 dB / SSIM 0.999 / LPIPS 0.001 is in range everywhere: only the oracle gate can catch it."""
    report = _report()
    oracle = report["per_frame"]["oracle"]
    oracle["psnr"][-1], oracle["ssim"][-1], oracle["lpips"][-1] = 45.0, 0.999, 0.001
    report["final"]["oracle"] = {"psnr": 45.0, "ssim": 0.999, "lpips": 0.001}
    _write(workspace, "sr", report)
    assert _gate() == 1
    failing = [line for line in capsys.readouterr().out.splitlines() if line.rstrip().endswith("FAIL")]
    assert len(failing) == 1
    assert re.match(r"oracle\s+sr/oracle\s+45\.0000/0\.9990/0\.0010\s+inf/1/0\s+FAIL", failing[0])


def test_an_oracle_that_is_not_monotone_fails_on_the_monotone_row(workspace, capsys):
    report = _report()
    psnr = report["per_frame"]["oracle"]["psnr"]
    psnr[3], psnr[4] = psnr[4], psnr[3]  # one adjacent swap: Spearman 1 - 6 * 2 / (9 * 80)
    _write(workspace, "sr", report)
    assert _gate() == 1
    out = capsys.readouterr().out
    assert re.search(r"monotone\s+sr/oracle\s+\+0\.9833/\+1\.0000\s+psnr \+1/lpips \+1\s+FAIL", out)
    assert re.search(r"monotone\s+deblur/oracle\s+\+1\.0000/\+1\.0000\s+psnr \+1/lpips \+1\s+ok", out)


def test_non_finite_or_out_of_range_values_fail(workspace, capsys):
    report = _report()
    report["per_frame"]["identity"]["ssim"][3] = 1.5
    report["per_frame"]["classical"]["lpips"][0] = float("nan")
    _write(workspace, "deblur", report)
    assert _gate() == 1
    out = capsys.readouterr().out
    assert "ssim@4" in out and "lpips@1" in out


@pytest.mark.parametrize("content", [None, "", "{}"])
def test_missing_or_empty_metrics_fail(workspace, capsys, content):
    path = workspace / "metrics" / "sr.json"
    if content is None:
        path.unlink()
    else:
        path.write_text(content)
    assert _gate() == 1
    assert "missing or empty" in capsys.readouterr().out


def test_regression_against_a_base_revision_fails(workspace, capsys):
    git = lambda *a: subprocess.run(["git", *a], cwd=workspace, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")
    assert _gate("--base", "HEAD") == 0
    worse = copy.deepcopy(_report(classical_end=13.9))  # 0.1 dB worse than base; tolerance 0.05 dB
    _write(workspace, "deblur", worse)
    capsys.readouterr()
    assert _gate("--base", "HEAD") == 1
    assert "deblur/classical psnr" in capsys.readouterr().out


def test_the_model_getting_further_from_its_vae_ceiling_fails_against_the_base(workspace, capsys):
    _commit(workspace)
    _write(workspace, "sr", _report(against_end=19.9))  # model_vs_vae 0.1 dB worse; tolerance 0.05 dB
    capsys.readouterr()
    assert _gate("--base", "HEAD") == 1
    out = capsys.readouterr().out
    assert re.search(r"base\s+sr/model_vs_vae psnr\s+20\.0000 -> 19\.9000\s+worse <= 0\.05\s+FAIL", out)
    assert re.search(r"present\s+sr\s+5 methods\s+5 x 9 frames\s+ok", out)


def _commit(workspace: Path) -> None:
    git = lambda *a: subprocess.run(["git", *a], cwd=workspace, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base")


def test_a_base_revision_that_does_not_exist_stops_with_its_name(workspace, capsys):
    _commit(workspace)
    assert _gate("--base", "nonexistent-rev") == 2
    err = capsys.readouterr().err
    assert "--base nonexistent-rev: not a commit" in err


def test_a_base_revision_without_metrics_fails(workspace, capsys):
    (workspace / "metrics" / "sr.json").rename(workspace / "sr.json")
    _commit(workspace)  # the base has no metrics/sr.json
    (workspace / "sr.json").rename(workspace / "metrics" / "sr.json")
    assert _gate("--base", "HEAD") == 1
    out = capsys.readouterr().out
    assert re.search(r"base\s+sr\s+no metrics at HEAD\s+metrics to compare with\s+FAIL", out)


def test_gate_loads_neither_torch_nor_the_task_and_prompt_code(workspace):
    """`progrestore gate` runs in CI after every repro: it imports only the gate code and the registries."""
    probe = (
        "import sys\n"
        "from progrestore.cli import main\n"
        "status = main(['gate'])\n"
        "heavy = [m for m in sys.modules if m == 'torch' or m.startswith(('progrestore.tasks.', "
        "'progrestore.prompts', 'progrestore.data', 'progrestore.model'))]\n"
        "print(status, sorted(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=workspace, capture_output=True, text=True)
    assert result.stdout.strip().splitlines()[-1] == "0 []", result.stdout + result.stderr
