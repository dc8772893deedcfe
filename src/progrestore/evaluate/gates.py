"""CI metric gates: check the evaluation's files against the gates of params.yaml, and against an earlier
revision with a tolerance.

Per task they read ``<metrics>/<task>.json`` (final-frame means), the per-frame plot data in
``<curves>/<metric>/<task>.json`` and the profile in ``<metrics>/<task>/about.json``; a null value there is an
infinite PSNR (a frame equal to the clean image).

Checks, each a row of the printed table:
- ``present``: every task's metrics file exists, parses, and has every evaluated method with T frames;
- ``range``: every per-frame value is finite and in its metric's range (the metric registry: SSIM in
  [-1, 1], LPIPS >= 0, PSNR >= 0), or the metric's exact value on a frame where every metric has its exact
  value (PSNR inf where SSIM is 1 and LPIPS 0);
- ``oracle``: the oracle's last frame is exactly clean (PSNR inf, SSIM 1, LPIPS 0), if ``gates.oracle_exact``;
- ``monotone``: the oracle's mean Spearman correlation of frame and value is exactly +1 (each clip's
  synthetic progression improves at every frame) for each metric listed in ``gates.oracle_monotone``;
- ``margin``: a method's final-frame PSNR exceeds identity's by ``gates.margin_over_identity[method][task]`` dB
  (a key ``model@<profile>`` applies to the model method of that profile only);
- ``base``: with ``--base REV``, no final-frame metric (of a method, or of a comparison such as
  ``model_vs_vae``) is worse than at REV by more than its ``gates.tolerance.<metric>``;
  a task without metrics at REV fails (a comparison that cannot be made is not a pass), and a REV that
  is not a commit stops the command before any check.
"""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path

from progrestore.config import Section
from progrestore.errors import InputError
from progrestore.evaluate.metrics import metrics
from progrestore.evaluate.protocol import ABOUT


@dataclass(frozen=True)
class Check:
    name: str
    subject: str
    value: str
    limit: str
    passed: bool


def _fmt(value: float) -> str:
    return "inf" if value == math.inf else f"{value:.4f}"


def _infinite(value: float | None) -> float:
    """A value read back from the files: null is an infinite PSNR."""
    return math.inf if value is None else value


def _read(path: Path) -> object:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _infinite_if_null(final: dict) -> dict:
    return {m: {k: _infinite(v) for k, v in per.items()} for m, per in final.items()}


def _finals(numbers: dict) -> dict:
    """The final-frame means of a metrics file's methods and comparisons (``against``), null as inf."""
    return _infinite_if_null(numbers["final"] | numbers.get("against", {}))


def load_report(metrics_dir: Path, curves_dir: Path, task: str) -> dict | None:
    """{final, per_frame, progression, profile} of ``task``, or None when its files are missing, empty or
    broken."""
    numbers = _read(Path(metrics_dir) / f"{task}.json")
    if not isinstance(numbers, dict) or not numbers.get("final"):
        return None
    per_frame: dict[str, dict[str, list[float]]] = {}
    for metric in (m.name for m in metrics()):
        rows = _read(Path(curves_dir) / metric / f"{task}.json")
        if not isinstance(rows, list):
            return None
        for row in rows:
            for method, value in row.items():
                if method != "frame":
                    series = per_frame.setdefault(method, {}).setdefault(metric, [])
                    series.append(_infinite(value))
    about = _read(Path(metrics_dir) / task / ABOUT)
    profile = about.get("profile") if isinstance(about, dict) else None
    return {
        "final": _finals(numbers),
        "per_frame": per_frame,
        "progression": numbers.get("progression"),
        "profile": profile,
    }


def check_revision(rev: str) -> None:
    """Stop with a clear message unless ``rev`` names a commit of the repository here."""
    result = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise InputError(f"--base {rev}: not a commit of the git repository here (git rev-parse failed)")


def _base_report(rev: str, path: Path) -> dict | None:
    result = subprocess.run(["git", "show", f"{rev}:{path.as_posix()}"], capture_output=True, text=True)
    if result.returncode != 0:
        return None
    try:
        report = json.loads(result.stdout)
        report["final"] = _finals(report)
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
        return None
    return report if isinstance(report, dict) and report.get("final") else None


def _exact_frame(per_metric: dict[str, list[float]], t: int) -> bool:
    """Whether frame ``t`` has every metric's exact value: a frame equal to the clean image."""
    return all(t < len(per_metric.get(m.name, [])) and per_metric[m.name][t] == m.exact for m in metrics())


def check_task(
    task: str, report: dict | None, gates: Section, frames: int, methods: list[str]
) -> list[Check]:
    if report is None:
        return [Check("present", task, "missing or empty", "metrics file", False)]
    curves, registered = report["per_frame"], metrics()
    names = [m.name for m in registered]
    missing = [
        m for m in methods if m not in curves or any(len(curves[m].get(k, [])) != frames for k in names)
    ]
    checks = [
        Check(
            "present",
            task,
            f"{len(methods) - len(missing)} methods",
            f"{len(methods)} x {frames} frames",
            not missing,
        )
    ]
    for method, per_metric in curves.items():
        bad = [
            f"{metric.name}@{t + 1}"
            for metric in registered
            for t, value in enumerate(per_metric.get(metric.name, []))
            if not metric.valid(value, _exact_frame(per_metric, t))
        ]
        checks.append(
            Check("range", f"{task}/{method}", ", ".join(bad) or "all in range", "finite, in range", not bad)
        )
    if gates.boolean("oracle_exact") and "oracle" in curves:
        last = {m.name: curves["oracle"][m.name][-1] for m in registered}
        clean = all(last[m.name] == m.exact for m in registered)
        shown = "/".join(_fmt(last[m.name]) for m in registered)
        limit = "/".join(f"{m.exact:g}" for m in registered)
        checks.append(Check("oracle", f"{task}/oracle", shown, limit, clean))
    monotone = gates.names("oracle_monotone")
    if any(name not in names for name in monotone):
        raise gates.fail("oracle_monotone", f"a list of metrics among {', '.join(names)}")
    if monotone and "oracle" in curves:
        oracle = (report.get("progression") or {}).get("oracle", {})
        rho = {name: (oracle.get(name) or {}).get("spearman") for name in monotone}
        shown = "/".join("missing" if v is None else f"{v:+.4f}" for v in rho.values())
        passed = all(v == 1.0 for v in rho.values())
        limit = "/".join(f"{name} +1" for name in monotone)
        checks.append(Check("monotone", f"{task}/oracle", shown, limit, passed))
    margins = gates.section("margin_over_identity")
    final = report["final"]
    profile = report.get("profile")
    for key in margins.fields():
        method, _, only_for = key.partition("@")  # "model@<profile>": a margin for one model profile
        if only_for and only_for != profile:
            continue
        if method in final and "identity" in final and task in margins.section(key).fields():
            needed = margins.section(key).number(task)
            gain = final[method]["psnr"] - final["identity"]["psnr"]
            checks.append(
                Check(
                    "margin",
                    f"{task}/{method} psnr",
                    f"{gain:+.3f} dB",
                    f">= {needed:+.3f} dB",
                    gain >= needed,
                )
            )
    return checks


def check_against_base(
    task: str, report: dict, base: dict | None, rev: str, tolerance: Section
) -> list[Check]:
    if base is None:
        return [Check("base", task, f"no metrics at {rev}", "metrics to compare with", False)]
    checks = []
    for method, now in report["final"].items():
        if method not in base.get("final", {}):
            continue
        for metric in metrics():
            before, after = base["final"][method][metric.name], now[metric.name]
            worse = metric.signed(before) - metric.signed(after)
            if math.isinf(before) or math.isinf(after):
                worse = 0.0 if before == after else math.inf
            allowed = tolerance.number(metric.tolerance_key, 0.0)
            checks.append(
                Check(
                    "base",
                    f"{task}/{method} {metric.name}",
                    f"{_fmt(before)} -> {_fmt(after)}",
                    f"worse <= {allowed}",
                    worse <= allowed,
                )
            )
    return checks


def run_gates(
    tasks: list[str],
    gates: Section,
    frames: int,
    methods: list[str],
    metrics_dir: Path,
    curves_dir: Path,
    base: str | None,
) -> list[Check]:
    if base is not None:
        check_revision(base)
    checks = []
    for task in tasks:
        path = Path(metrics_dir) / f"{task}.json"
        report = load_report(metrics_dir, curves_dir, task)
        checks += check_task(task, report, gates, frames, methods)
        if base is not None and report is not None:
            checks += check_against_base(
                task, report, _base_report(base, path), base, gates.section("tolerance")
            )
    return checks


def format_table(checks: list[Check]) -> str:
    header = ("check", "subject", "value", "limit", "result")
    rows = [header] + [(c.name, c.subject, c.value, c.limit, "ok" if c.passed else "FAIL") for c in checks]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    failed = sum(not c.passed for c in checks)
    return "\n".join([*lines, f"gate checks: {len(checks) - failed} ok, {failed} failing"])
