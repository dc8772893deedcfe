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

from progrestore.config import PARAMS_FILE, ClipSettings, Section, clip_size, load_params
from progrestore.data import degradations
from progrestore.data.dataset import CLIP_MANIFEST, build_task_dataset
from progrestore.data.framing import PORTRAIT_RULES
from progrestore.data.prepare import prepare_images
from progrestore.data.sources import list_sources
from progrestore.data.synthesis import regenerate
from progrestore.errors import InputError, ProgrestoreError
from progrestore.io.images import read_image
from progrestore.io.video import write_video

IMAGES_DIR = Path("data/images")
DATASETS_DIR = Path("data/datasets")
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], None] = args.run
    try:
        run(args)
    except ProgrestoreError as err:
        print(f"progrestore {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
