"""Stage ``prompts``: prompt files for one task's dataset folders, both strategies, the chosen one as prompt.txt.

Per split folder (beside ``videos.txt``, line by line aligned with it):

    prompt_uniform.txt   the task's fixed prompt on every line
    prompt_scene.txt     the refined caption of each clip's source image
    prompt.txt           a copy of the strategy chosen by ``prompts.strategy`` (what fine-tuning reads)
    prompts.jsonl        per clip: caption, both prompts, the strategy, backends and models, sha256

Scene prompts caption the *clean* source image (the scene's content, not its degradation) and are
shared by the clips of one image. Captions are cached by image content + captioner settings,
refinements by caption + refiner settings + task theme, in ``<cache>/prompts``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from progrestore.config import SPLITS, Section
from progrestore.data import degradations
from progrestore.data.manifest import read_clip_manifest
from progrestore.errors import InputError, ParamsError
from progrestore.io.atomic import write_jsonl, write_text
from progrestore.io.cache import JsonCache, cache_dir, cache_key
from progrestore.io.images import read_image
from progrestore.layout import CLIP_MANIFEST, DATASETS_DIR, IMAGES_DIR
from progrestore.prompts.captioners import HeuristicCaptioner, LlavaCaptioner
from progrestore.prompts.refiners import OpenAIRefiner, TemplateRefiner
from progrestore.prompts.validation import problem

STRATEGIES = ("uniform", "scene")


@dataclass
class PromptSettings:
    strategy: str
    uniform: str
    captioner: object
    refiner: object
    concurrency: int

    @classmethod
    def from_section(cls, section: Section, task: str) -> PromptSettings:
        strategy = section.choice("strategy", STRATEGIES)
        uniform = section.section("uniform")
        text = uniform.text(task)
        if problem(text, task) is not None:
            raise uniform.fail(task, f"a valid {task} prompt ({problem(text, task)})")
        kind = section.choice("captioner", ("heuristic", "llava"))
        if kind == "llava":
            llava = section.section("llava")
            captioner = LlavaCaptioner(
                llava.text("model"), llava.integer("batch_size", 1), llava.integer("max_new_tokens", 1, 500)
            )
        else:
            captioner = HeuristicCaptioner()
        concurrency = 1
        if section.choice("refiner", ("template", "openai")) == "openai":
            api = section.section("openai")
            key_name = api.text("api_key_env")
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key_name) or key_name.startswith(("sk-", "sk_")):
                raise ParamsError(  # not api.fail: that would echo the value, which may be a pasted key
                    f"{api.key('api_key_env')} must be the NAME of an environment variable, such as "
                    "OPENAI_API_KEY; the value given is not one, and is not shown (a key never goes in params)"
                )
            refiner = OpenAIRefiner(
                api.text("base_url"),
                api.text("model"),
                key_name,
                api.number("timeout_s", 0.1, 600),
                api.integer("retries", 0, 20),
                api.number("backoff_s", 0.0, 60),
                api.number("temperature", 0.0, 2.0),
            )
            concurrency = api.integer("concurrency", 1, 64)
        else:
            refiner = TemplateRefiner()
        return cls(strategy, text, captioner, refiner, concurrency)


def sanitise_caption(text: str) -> str:
    """One line of printable text: control characters dropped, whitespace collapsed."""
    printable = "".join(ch if not unicodedata.category(ch).startswith("C") else " " for ch in text)
    return " ".join(printable.split())


def _read_split(folder: Path) -> list[dict]:
    entries, videos = read_clip_manifest(folder), folder / "videos.txt"
    if not videos.is_file() or [e["video"] for e in entries] != videos.read_text().splitlines():
        raise InputError(f"{folder}: videos.txt and {CLIP_MANIFEST} list different clips")
    return entries


def _map(fn: Callable, items: list, workers: int, desc: str) -> list:
    if workers == 1:
        return [fn(item) for item in tqdm(items, desc=desc, unit="item")]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(fn, items), total=len(items), desc=desc, unit="item"))


def build_prompts(
    task: str, dataset_dir: Path, images_dir: Path, settings: PromptSettings, cache_root: Path | None = None
) -> dict:
    """Write every split's prompt files for ``task``; returns counts for the log."""
    settings.refiner.check()  # before any captioning or request
    cache_root = Path(cache_root or cache_dir() / "prompts")
    captions_cache, refinements_cache = (
        JsonCache(cache_root / "captions"),
        JsonCache(cache_root / "refinements"),
    )
    splits = {split: _read_split(Path(dataset_dir) / split) for split in SPLITS}
    images = {(e["split"], e["image_id"]): e["source_sha256"] for rows in splits.values() for e in rows}

    captioner = settings.captioner
    caption_keys = {img: cache_key(sha, captioner.settings_key()) for img, sha in images.items()}
    captions = {img: (captions_cache.get(k) or {}).get("caption") for img, k in caption_keys.items()}
    missing = [img for img, caption in captions.items() if caption is None]
    if missing:
        pixels = [read_image(Path(images_dir) / split / f"{image_id}.png") for split, image_id in missing]
        for img, caption in zip(missing, captioner.caption(pixels), strict=True):
            captions[img] = sanitise_caption(caption)
            captions_cache.put(
                caption_keys[img], {"caption": captions[img], "captioner": captioner.settings_key()}
            )

    refiner = settings.refiner
    unique = sorted(set(captions.values()))
    keys = {c: cache_key(c, refiner.settings_key(task), task) for c in unique}
    refined: dict[str, dict] = {c: refinements_cache.get(keys[c]) for c in unique}

    def refine(caption: str) -> None:
        prompt, replaced = refiner.refine(caption, task)
        refined[caption] = {"prompt": prompt, "replaced_by_template": replaced}
        refinements_cache.put(keys[caption], refined[caption])

    todo = [c for c in unique if refined[c] is None]
    _map(refine, todo, settings.concurrency, f"refine {task}")

    uniform = settings.uniform
    for split, rows in splits.items():
        folder = Path(dataset_dir) / split
        records = []
        for e in rows:
            caption = captions[(e["split"], e["image_id"])]
            scene = refined[caption]["prompt"]
            if problem(scene, task) is not None:
                raise InputError(
                    f"{task} {e['clip_id']}: the scene prompt is invalid ({problem(scene, task)}): {scene!r}"
                )
            chosen = uniform if settings.strategy == "uniform" else scene
            records.append(
                {
                    "clip_id": e["clip_id"],
                    "image_id": e["image_id"],
                    "strategy": settings.strategy,
                    "prompt": chosen,
                    "sha256": hashlib.sha256(chosen.encode()).hexdigest(),
                    "uniform_prompt": uniform,
                    "scene_prompt": scene,
                    "caption": caption,
                    "captioner": captioner.name,
                    "captioner_model": getattr(captioner, "model_id", getattr(captioner, "model", "")),
                    "refiner": refiner.name,
                    "refiner_model": refiner.model,
                    "replaced_by_template": refined[caption]["replaced_by_template"],
                }
            )
        write_text(folder / "prompt_uniform.txt", "".join(uniform + "\n" for _ in records))
        write_text(folder / "prompt_scene.txt", "".join(r["scene_prompt"] + "\n" for r in records))
        write_text(folder / "prompt.txt", "".join(r["prompt"] + "\n" for r in records))
        write_jsonl(folder / "prompts.jsonl", records)
    return {
        "clips": sum(len(rows) for rows in splits.values()),
        "captions_new": len(missing),
        "captions_cached": len(images) - len(missing),
        "refinements_new": len(todo),
        "refinements_cached": len(unique) - len(todo),
        "replaced_by_template": sum(refined[c]["replaced_by_template"] for c in todo),
    }


def run_prompts(params: Section, task: str) -> None:
    """Stage ``prompts@<task>``: reads ``prompts.*``, of ``prompts.uniform`` only the task's prompt."""
    settings = PromptSettings.from_section(params.section("prompts"), degradations.check(task))
    counts = build_prompts(task, DATASETS_DIR / task, IMAGES_DIR, settings)
    print(
        f"{task} prompts ({settings.strategy} -> prompt.txt): "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
    )
