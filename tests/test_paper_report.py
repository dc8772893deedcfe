"""`progrestore report` on planted metric files of known values: numbers in their cells with their labels,
the strategy checks of revisions and the workspace (stale tasks left out or refused), overwrite refusals,
one-line errors and byte-identical output."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from progrestore.cli import main
from progrestore.evaluate.metrics import metrics
from progrestore.evaluate.paper_report import MARKER
from progrestore.evaluate.published import PAPER_TABLE_I_LPIPS
from progrestore.evaluate.report import write_report
from progrestore.model.profiles import profile_named
from progrestore.verify import folder_md5

from .conftest import REPO

FRAMES = 9
TINY = profile_named("tiny").label + ", 96x160"  # as the restore stage records it
DATA = "planted data (a test, not a benchmark)"


def _per_frame(shift: float) -> dict[str, dict[str, list[float]]]:
    """Known curves: the model's value of the metric at ``position`` p is 10 (p + 1) + 0.5 t + ``shift`` at
    frame t; identity is flat at 5 (p + 1); the oracle rises to the metric's exact value (PSNR inf)."""
    curves: dict[str, dict[str, list[float]]] = {"model": {}, "identity": {}, "oracle": {}}
    for m in metrics():
        p = m.position
        curves["model"][m.name] = [10 * (p + 1) + 0.5 * t + shift for t in range(1, FRAMES + 1)]
        curves["identity"][m.name] = [5.0 * (p + 1)] * FRAMES
        curves["oracle"][m.name] = [5.0 * (p + 1) + t for t in range(1, FRAMES)] + [m.exact]
    return curves


def _plant(metrics_dir: Path, task: str, shift: float = 0.0, identity_shift: float = 0.0) -> None:
    """One task's evaluation written by the evaluate stage's own writer, in the pipeline's layout."""
    per_frame = _per_frame(shift)
    per_frame["identity"] = {k: [v + identity_shift for v in s] for k, s in per_frame["identity"].items()}
    trends = {"spearman": 1.0, "steps_not_worse": 0.875, "area": 0.25 + shift, "frame_90": 8.0}
    flat = {"spearman": 0.0, "steps_not_worse": 1.0, "area": 0.0, "frame_90": None}
    summary = {
        "clips": 3,
        "final": {method: {k: s[-1] for k, s in c.items()} for method, c in per_frame.items()},
        "progression": {
            "model": {m.name: trends for m in metrics()},
            "identity": {m.name: flat for m in metrics()},
            "oracle": {m.name: trends | {"area": 0.5, "frame_90": 7.0} for m in metrics()},
        },
        "coherence": {
            "model": {"tlp": 0.125 + shift, "static_change": 3.5},
            "identity": {"tlp": 0.0625, "static_change": 0.0},
            "oracle": {"tlp": 0.0, "static_change": 0.5},
        },
        "against": {},
        "per_clip": {},
        "per_frame": per_frame,
    }
    methods = {"model": "the planted model", "identity": "the planted input", "oracle": "the planted clip"}
    labels = {"data": DATA, "model_profile": TINY, "profile": "tiny"}
    curves = {m.name: metrics_dir / "per_frame" / m.name / f"{task}.json" for m in metrics()}
    write_report(task, summary, methods, labels, metrics_dir / f"{task}.json", curves)


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A folder with the repository's dvc.yaml (its folders) and params.yaml (prompts.strategy uniform)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["prompts"]["strategy"] = "uniform"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path


@pytest.fixture
def planted(workdir) -> tuple[Path, Path]:
    """Two folders of sr results: the scene model 0.125 above the uniform one at every frame."""
    _plant(workdir / "uniform", "sr")
    _plant(workdir / "scene", "sr", shift=0.125)
    return workdir / "uniform", workdir / "scene"


def _report(*args: str) -> int:
    return main(["report", *args])


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def section(markdown: str, heading: str) -> list[str]:
    """The non-blank lines under ``heading`` up to the next heading."""
    lines = markdown.splitlines()
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("#")), len(lines))
    return [line for line in lines[start:end] if line]


def table_row(lines: list[str], *first_cells: str) -> list[str]:
    """The cells of the one table row in ``lines`` that starts with ``first_cells``."""
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines if line.startswith("|")]
    found = [row for row in rows if row[: len(first_cells)] == list(first_cells)]
    assert len(found) == 1, (first_cells, lines)
    return found[0][len(first_cells) :]


def test_the_planted_pair_lands_in_its_cells_with_its_labels(planted, workdir, capsys):
    uniform, scene = planted
    assert _report("--uniform", str(uniform), "--scene", str(scene)) == 0
    assert "report -> reports/paper.md (figures: reports/paper/sr.png)" in capsys.readouterr().out
    text = (workdir / "reports" / "paper.md").read_text()
    assert text.splitlines()[0] == f"{MARKER} paper/sr.png -->"
    assert (
        f"**Plumbing numbers, not results.** The model rows come from a randomly initialised tiny profile (`{TINY}`)"
        in text
    )
    assert (
        f"- uniform prompts: folder `{uniform}`: strategy as given on the command line (--uniform), not verified"
        in text
    )
    assert (
        f"- scene prompts: folder `{scene}`: strategy as given on the command line (--scene), not verified"
        in text
    )
    label = f"model: {TINY}; data: {DATA}; 3 clips"
    final = section(text, "#### sr: final frame (9) and temporal coherence")
    assert final[0] == f"*means over clips; {label}*"
    # PSNR (position 0): 10 + 0.5 * 9 = 14.5 (+ 0.125); SSIM: 20 + 4.5; LPIPS: 30 + 4.5; then tlp, static_change
    assert table_row(final, "`model` (tiny)", "uniform") == [
        "14.5000",
        "24.5000",
        "34.5000",
        "0.1250",
        "3.5000",
    ]
    assert table_row(final, "`model` (tiny)", "scene") == [
        "14.6250",
        "24.6250",
        "34.6250",
        "0.2500",
        "3.5000",
    ]
    assert table_row(final, "`identity`", "none (identical in both sources)") == [
        "5.0000", "10.0000", "15.0000", "0.0625", "0.0000"
    ]  # fmt: skip
    assert table_row(final, "`oracle`", "none (identical in both sources)")[:3] == ["inf", "1.0000", "0.0000"]
    progression = section(text, "#### sr: progression, PSNR (dB)")
    assert progression[0] == f"*means over clips; {label}*"
    assert table_row(progression, "`model` (tiny)", "scene") == ["1.0000", "0.8750", "0.3750", "8.0000"]
    assert table_row(progression, "`identity`", "none (identical in both sources)") == [
        "0.0000", "1.0000", "0.0000", "n/a"
    ]  # fmt: skip
    per_frame = section(text, "#### sr: per frame, PSNR (dB)")
    assert per_frame[0] == f"*means over clips; {label}*"
    assert table_row(per_frame, "`model` (tiny)", "uniform") == [f"{10 + 0.5 * t:.4f}" for t in range(1, 10)]
    assert table_row(per_frame, "`model` (tiny)", "scene") == [
        f"{10.125 + 0.5 * t:.4f}" for t in range(1, 10)
    ]
    assert table_row(per_frame, "`model` (tiny)", "scene - uniform") == ["+0.1250"] * FRAMES
    assert "![sr: per-frame curves, uniform vs scene prompts](paper/sr.png)" in text
    assert (workdir / "reports" / "paper" / "sr.png").read_bytes().startswith(b"\x89PNG")
    assert "ceiling" not in text  # no against.model_vs_vae in these files: nothing said about it
    table = section(text, "## Table I: ReLoBlur, frame-wise LPIPS (lower is better)")
    assert table[0].startswith("Not run: `metrics/reloblur.json` does not exist.")
    assert "`progrestore reloblur ROOT --split test`" in table[0]
    assert table_row(table, "paper, Table I") == ["0.335", "0.330", "0.323", "0.319", "0.316", "0.318", "0.316", "0.317", "0.317"]  # fmt: skip


def test_the_same_inputs_give_the_same_bytes(planted, workdir):
    uniform, scene = planted
    outputs = []
    for _ in range(2):
        assert _report("--uniform", str(uniform), "--scene", str(scene)) == 0
        outputs.append([(workdir / "reports" / p).read_bytes() for p in ("paper.md", "paper/sr.png")])
    assert outputs[0] == outputs[1]


def test_baselines_that_differ_between_the_sources_are_shown_for_each(workdir):
    _plant(workdir / "uniform", "sr")
    _plant(workdir / "scene", "sr", shift=0.125, identity_shift=1.0)
    assert _report("--uniform", "uniform", "--scene", "scene") == 0
    text = (workdir / "reports" / "paper.md").read_text()
    assert "**The sources differ in identity**, which read no prompt: both are shown." in text
    final = section(text, "#### sr: final frame (9) and temporal coherence")
    assert table_row(final, "`identity`", "none (uniform source)")[0] == "5.0000"
    assert table_row(final, "`identity`", "none (scene source)")[0] == "6.0000"
    assert table_row(final, "`oracle`", "none (identical in both sources)")[0] == "inf"


def test_new_methods_and_the_ceiling_are_reported_when_a_source_has_them(planted, workdir):
    """A ``vae`` method is one more method that reads no prompt; a ``model_vs_vae`` column is the model's;
    ``against.model_vs_vae`` gets its table, and a source without it says so."""
    uniform, scene = planted
    for folder, ceiling in ((uniform, {"psnr": 31.25, "ssim": 0.75, "lpips": 0.0625}), (scene, None)):
        numbers = json.loads((folder / "sr.json").read_text())
        numbers["final"]["vae"] = {"psnr": 40.0, "ssim": 0.96875, "lpips": 0.03125}
        if ceiling:
            numbers["against"] = {"model_vs_vae": ceiling}
        (folder / "sr.json").write_text(json.dumps(numbers))
        for m in metrics():
            path = folder / "per_frame" / m.name / "sr.json"
            rows = json.loads(path.read_text())
            for row in rows:
                row |= {"vae": 2.0 * row["frame"], "model_vs_vae": 3.0 * row["frame"]}
            path.write_text(json.dumps(rows))
    assert _report("--uniform", str(uniform), "--scene", str(scene)) == 0
    text = (workdir / "reports" / "paper.md").read_text()
    final = section(text, "#### sr: final frame (9) and temporal coherence")
    assert table_row(final, "`vae`", "none (identical in both sources)")[:3] == [
        "40.0000",
        "0.9688",
        "0.0312",
    ]
    ceiling = section(text, "#### sr: the model against its autoencoder's ceiling")
    assert table_row(ceiling, "uniform") == ["31.2500", "0.7500", "0.0625"]
    assert table_row(ceiling, "scene") == ["not in this source"] * 3
    per_frame = section(text, "#### sr: per frame, SSIM")
    assert table_row(per_frame, "`model_vs_vae` (tiny)", "scene") == [f"{3.0 * t:.4f}" for t in range(1, 10)]


def test_a_method_one_source_lacks_is_said_to_be_missing_there(planted, workdir):
    uniform, scene = planted
    numbers = json.loads((uniform / "sr.json").read_text())
    numbers["final"]["vae"] = {"psnr": 40.0, "ssim": 0.96875, "lpips": 0.03125}
    (uniform / "sr.json").write_text(json.dumps(numbers))
    assert _report("--uniform", str(uniform), "--scene", str(scene)) == 0
    text = (workdir / "reports" / "paper.md").read_text()
    assert "**The sources differ in vae**, which read no prompt: both are shown." in text
    final = section(text, "#### sr: final frame (9) and temporal coherence")
    assert table_row(final, "`vae`", "none (uniform source)")[0] == "40.0000"
    assert table_row(final, "`vae`", "none (scene source)") == ["not in this source"] * 5


def test_the_command_reads_json_and_draws_without_torch(planted, workdir):
    uniform, scene = planted
    code = (
        "import sys; from progrestore.cli import main; "
        f"code = main(['report', '--uniform', {str(uniform)!r}, '--scene', {str(scene)!r}]); "
        "print(code, 'torch' in sys.modules)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, check=True
    )
    assert run.stdout.splitlines()[-1] == "0 False"


def _plant_reloblur(metrics_dir: Path) -> None:
    per_frame = {
        "model": {m.name: [0.5 - 0.01 * t for t in range(1, 10)] for m in metrics()},
        "identity": {m.name: [0.625] * FRAMES for m in metrics()},
    }
    summary = {
        "clips": 7,
        "final": {method: {k: s[-1] for k, s in c.items()} for method, c in per_frame.items()},
        "progression": {},
        "coherence": {},
        "against": {},
        "per_clip": {},
        "per_frame": per_frame,
    }
    labels = {
        "data": "ReLoBlur test (7 pairs) from /data/relo: zero-shot, real motion blur",
        "model_profile": TINY,
        "profile": "tiny",
        "lora": "models/deblur",
        "restoration_task": "deblur",
    }
    curves = {m.name: metrics_dir / "reloblur" / f"{m.name}.json" for m in metrics()}
    methods = {"model": "the planted model", "identity": "the planted input"}
    write_report("reloblur", summary, methods, labels, metrics_dir / "reloblur.json", curves)


def test_table_i_sets_the_reloblur_report_beside_the_papers_row(planted, workdir):
    uniform, scene = planted
    _plant_reloblur(workdir / "metrics")  # where the command looks by default
    assert _report("--uniform", str(uniform), "--scene", str(scene)) == 0
    text = (workdir / "reports" / "paper.md").read_text()
    table = section(text, "## Table I: ReLoBlur, frame-wise LPIPS (lower is better)")
    assert table[0].startswith(
        "*ours from `metrics/reloblur.json`: ReLoBlur test (7 pairs) from /data/relo: zero-shot, real motion "
        f"blur; 7 pairs; model: {TINY}; LoRA: models/deblur; restoration task: deblur."
    )
    assert table_row(table, "paper, Table I") == [f"{v:.3f}" for v in PAPER_TABLE_I_LPIPS]
    assert table_row(table, "`model` (tiny)") == [f"{0.5 - 0.01 * t:.4f}" for t in range(1, 10)]
    assert table_row(table, "`identity`") == ["0.6250"] * FRAMES
    assert _report("--uniform", str(uniform), "--scene", str(scene), "--reloblur", "elsewhere.json") == 2


def test_a_file_of_the_users_is_never_replaced(planted, workdir, capsys):
    uniform, scene = planted
    args = ("--uniform", str(uniform), "--scene", str(scene))
    out = workdir / "reports" / "paper.md"
    out.parent.mkdir()
    out.write_text("# my notes\n")
    assert _report(*args) == 2
    assert "--out reports/paper.md: exists and was not written by progrestore report" in _one_line(capsys)
    assert out.read_text() == "# my notes\n" and not (workdir / "reports" / "paper").exists()
    out.unlink()
    figure = workdir / "reports" / "paper" / "sr.png"
    figure.parent.mkdir()
    figure.write_bytes(b"my figure")
    assert _report(*args) == 2
    assert "reports/paper/sr.png: exists and was not written by progrestore report" in _one_line(capsys)
    assert figure.read_bytes() == b"my figure" and not out.exists()
    figure.unlink()
    assert _report(*args) == 0 and _report(*args) == 0  # its own report and figure: replaced


def test_a_figure_of_a_task_left_out_later_is_removed_with_the_report_that_named_it(planted, workdir):
    uniform, scene = planted
    _plant(uniform, "deblur")
    _plant(scene, "deblur", shift=1.0)
    assert _report("--uniform", str(uniform), "--scene", str(scene)) == 0
    figures = workdir / "reports" / "paper"
    assert sorted(p.name for p in figures.iterdir()) == ["deblur.png", "sr.png"]
    (figures / "mine.png").write_bytes(b"not the command's")
    assert _report("--uniform", str(uniform), "--scene", str(scene), "--tasks", "sr") == 0
    assert sorted(p.name for p in figures.iterdir()) == ["mine.png", "sr.png"]


def test_bad_sources_are_one_line_errors(planted, workdir, capsys):
    uniform, scene = planted
    assert _report("--uniform", str(uniform), "--scene", "missing-folder") == 2
    err = _one_line(capsys)
    assert err.startswith(
        "progrestore report: error: --scene missing-folder: no such folder, nor a git revision"
    )
    assert _report("--uniform", str(uniform)) == 2  # the workspace sets uniform: --scene has no default
    assert (
        "--scene: required, since the workspace's params.yaml sets prompts.strategy 'uniform'"
        in _one_line(capsys)
    )
    assert _report("--uniform", str(uniform), "--scene", str(uniform)) == 2
    assert "name the same folder" in _one_line(capsys)
    (scene / "per_frame" / "ssim" / "sr.json").write_text('[{"frame": 1, "model": "high"}]')
    assert _report("--uniform", str(uniform), "--scene", str(scene)) == 2
    assert "per_frame/ssim/sr.json in folder" in _one_line(capsys)
    assert not (workdir / "reports").exists()


def test_sources_that_differ_in_more_than_the_prompts_are_no_comparison(workdir, capsys):
    _plant(workdir / "uniform", "sr")
    _plant(workdir / "scene", "sr")
    about = workdir / "scene" / "sr" / "about.json"
    about.write_text(json.dumps(json.loads(about.read_text()) | {"profile": "tiny-1.0"}))
    assert _report("--uniform", "uniform", "--scene", "scene", "--tasks", "sr") == 2
    assert "sr: the sources differ in model profile ('tiny', 'tiny-1.0')" in _one_line(capsys)


# ------------------------------------------------------------------ revisions and the workspace, checked


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _lock(root: Path, strategies: dict[str, str]) -> dict:
    """A dvc.lock whose hashes are the planted files': per task, a prompts stage that ran with its
    strategy and an evaluate stage that read its prompt and wrote the metrics."""
    stages = {}
    for task, strategy in strategies.items():
        prompt = f"data/datasets/{task}/val/prompt.txt"
        made = hashlib.md5(f"{strategy} prompt".encode()).hexdigest()
        stages[f"prompts@{task}"] = {
            "cmd": f"python stages/prompts.py {task}",
            "params": {"params.yaml": {"model.profile": "tiny", "prompts.strategy": strategy}},
            "outs": [{"path": prompt, "hash": "md5", "md5": made}],
        }
        details = root / "metrics" / task
        outs = [
            {"path": f"metrics/{task}.json", "hash": "md5", "md5": _md5(root / "metrics" / f"{task}.json")}
        ]
        listing = {p.name: _md5(p) for p in details.iterdir()}
        outs.append({"path": f"metrics/{task}", "hash": "md5", "md5": folder_md5(listing)})
        for m in metrics():
            path = f"metrics/per_frame/{m.name}/{task}.json"
            outs.append({"path": path, "hash": "md5", "md5": _md5(root / path)})
        stages[f"evaluate@{task}"] = {
            "cmd": f"python stages/evaluate.py {task}",
            "deps": [{"path": prompt, "hash": "md5", "md5": made}, {"path": "src/x.py", "md5": "0" * 32}],
            "params": {"params.yaml": {"data.source": "sample"}},
            "outs": outs,
        }
    return {"schema": "2.0", "stages": stages}


def _git(root: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(command, cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def _commit(root: Path, strategy: str, lock_strategies: dict[str, str], shift: float) -> str:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["prompts"]["strategy"] = strategy
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for task, ran_with in lock_strategies.items():
        if ran_with == strategy:  # a task whose prompts did not rerun keeps its earlier files
            _plant(root / "metrics", task, shift=shift)
    (root / "dvc.lock").write_text(yaml.safe_dump(_lock(root, lock_strategies), sort_keys=False))
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", f"{strategy} prompts")
    return _git(root, "rev-parse", "HEAD")


@pytest.fixture
def repository(workdir) -> Path:
    """A git repository whose HEAD (and workspace) holds the uniform results of sr and deblur, and a DVC
    experiment ``scene-exp`` on it that reran sr alone with scene prompts: its deblur is stale."""
    _git(workdir, "init", "-q")
    baseline = _commit(workdir, "uniform", {"sr": "uniform", "deblur": "uniform"}, shift=0.0)
    experiment = _commit(workdir, "scene", {"sr": "scene", "deblur": "uniform"}, shift=0.125)
    _git(workdir, "update-ref", f"refs/exps/{baseline[:2]}/{baseline[2:]}/scene-exp", experiment)
    _git(workdir, "reset", "-q", "--hard", baseline)
    return workdir


def test_an_experiment_and_the_workspace_are_checked_and_a_stale_task_is_left_out(repository, capsys):
    assert _report("--scene", "scene-exp") == 0  # --uniform: the workspace's metrics folder
    out = capsys.readouterr().out
    remedy = "`dvc exp run -S prompts.strategy=scene evaluate@deblur` makes it"
    why = f"--scene scene-exp: prompts@deblur ran with prompts.strategy uniform, not scene (its outputs are stale); {remedy}"
    assert f"deblur: left out: {why}" in out
    text = (repository / "reports" / "paper.md").read_text()
    assert f"- deblur: {why}" in section(text, "## Sources")
    experiment = _git(repository, "for-each-ref", "--format=%(objectname)", "refs/exps")
    assert (
        "- uniform prompts: the workspace's `metrics` folder, checked against `params.yaml` and `dvc.lock`: prompts.strategy is uniform there"
        in text
    )
    assert (
        f"- scene prompts: `scene-exp` (commit {experiment[:10]}), checked against its params.yaml and dvc.lock: prompts.strategy is scene there"
        in text
    )
    assert experiment != _git(repository, "rev-parse", "HEAD")  # read from the experiment, not the workspace
    assert "### deblur" not in text and "### sr" in text
    final = section(text, "#### sr: final frame (9) and temporal coherence")
    assert table_row(final, "`model` (tiny)", "uniform")[0] == "14.5000"
    assert table_row(final, "`model` (tiny)", "scene")[0] == "14.6250"
    assert _report("--scene", "scene-exp", "--tasks", "deblur", "--out", "other.md") == 2
    assert _one_line(capsys) == f"progrestore report: error: deblur: {why}\n"


def test_a_revision_of_the_other_strategy_is_refused(repository, capsys):
    assert _report("--uniform", "HEAD", "--scene", "HEAD") == 2
    err = _one_line(capsys)
    assert err.startswith("progrestore report: error: --scene HEAD: the params.yaml of HEAD (commit ")
    assert "sets prompts.strategy 'uniform', not 'scene'" in err


def test_workspace_files_that_dvc_lock_does_not_record_are_stale(repository, capsys):
    numbers = repository / "metrics" / "sr.json"
    numbers.write_text(numbers.read_text().replace("14.5", "15.5"))  # edited after the stage ran
    assert _report("--scene", "scene-exp", "--tasks", "sr") == 2
    assert _one_line(capsys) == (
        "progrestore report: error: sr: --uniform metrics: metrics/sr.json is not the file dvc.lock records "
        "for evaluate@sr (changed since it ran); `dvc exp run -S prompts.strategy=uniform evaluate@sr` "
        "makes it\n"
    )
    _git(repository, "checkout", "-q", "--", "metrics")
    lock = yaml.safe_load((repository / "dvc.lock").read_text())
    lock["stages"]["prompts@sr"]["outs"][0]["md5"] = "f" * 32  # the prompts reran; evaluate did not
    (repository / "dvc.lock").write_text(yaml.safe_dump(lock))
    assert _report("--scene", "scene-exp", "--tasks", "sr") == 2
    assert (
        "sr: --uniform metrics: evaluate@sr ran on a data/datasets/sr/val/prompt.txt that prompts@sr has "
        "replaced since" in _one_line(capsys)
    )


def test_folder_md5_is_dvcs_hash_of_a_folder_output():
    """Known answers: the repository's own dvc.lock, as DVC wrote it, for each metrics folder it records."""
    lock = yaml.safe_load((REPO / "dvc.lock").read_text())
    recorded = {
        out["path"]: out["md5"]
        for stage in lock["stages"].values()
        for out in stage.get("outs", [])
        if out["md5"].endswith(".dir") and out["path"].startswith("metrics/")
    }
    assert recorded
    for path, md5 in recorded.items():
        assert folder_md5({p.name: _md5(p) for p in (REPO / path).iterdir()}) == md5


def test_the_command_takes_one_option_per_prompt_strategy():
    from progrestore.cli import build_parser
    from progrestore.prompts.build import STRATEGIES

    report = build_parser()._subparsers._group_actions[0].choices["report"]
    options = {a.dest for a in report._actions if a.option_strings} - {"help", "tasks", "reloblur", "out"}
    assert options == set(STRATEGIES)
