"""The prompts stage's computation (:mod:`progrestore.stages.prompts`): prompt files for one task's dataset
folders, both strategies, the chosen one as prompt.txt.

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

from progrestore import tasks
from progrestore.config import SPLITS, Section
from progrestore.data.manifest import read_clip_manifest
from progrestore.errors import InputError, ParamsError, quote
from progrestore.io.atomic import write_jsonl, write_text
from progrestore.io.cache import JsonCache, cache_dir, cache_key
from progrestore.io.images import read_image
from progrestore.layout import CLIP_MANIFEST
from progrestore.model.profiles import profile_from_params
from progrestore.prompts.captioners import HeuristicCaptioner, LlavaCaptioner
from progrestore.prompts.refiners import OpenAIRefiner, TemplateRefiner
from progrestore.prompts.validation import problem, token_problem

STRATEGIES = ("uniform", "scene")


@dataclass
class PromptSettings:
    strategy: str
    uniform: str
    captioner: object
    refiner: object
    concurrency: int
    budget: int  # the text encoder's sequence length

    @classmethod
    def from_params(cls, params: Section, task: str) -> PromptSettings:
        """``prompts`` for ``task``, with the budget of ``model.profile``'s text encoder."""
        budget = profile_from_params(params.section("model")).text_tokens
        section = params.section("prompts")
        strategy = section.choice("strategy", STRATEGIES)
        uniform = section.section("uniform")
        text = uniform.text(task)
        if problem(text, task, budget) is not None:
            raise uniform.fail(task, f"a valid {task} prompt ({problem(text, task, budget)})")
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
                budget,
                api.number("timeout_s", 0.1, 600),
                api.integer("retries", 0, 20),
                api.number("backoff_s", 0.0, 60),
                api.number("temperature", 0.0, 2.0),
            )
            concurrency = api.integer("concurrency", 1, 64)
        else:
            refiner = TemplateRefiner()
        return cls(strategy, text, captioner, refiner, concurrency, budget)


def prompt_option(params: Section, task: str, prompt: str | None) -> str | None:
    """``--prompt`` of ``progrestore restore`` and ``reloblur``, refused in one line before any model loads
    when it is empty or over the text encoder's budget by the prompts stage's count (the encoder would cut
    it silently, while the run's record kept all of it). None (the task's uniform prompt, which
    :class:`PromptSettings` checks) is returned as is."""
    if prompt is None:
        return None
    if not prompt.strip():
        raise InputError(f"--prompt: empty; leave it out to use the {task} task's uniform prompt")
    profile = profile_from_params(params.section("model"))
    why = token_problem(prompt, profile.text_tokens)
    if why is not None:
        raise InputError(
            f"--prompt {quote(prompt)}: {why}: the text encoder of {profile.name} reads "
            f"{profile.text_tokens} tokens and would cut the rest; shorten it"
        )
    return prompt


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


def caption_images(
    images: dict[tuple[str, str], str], images_dir: Path, captioner, cache: JsonCache
) -> tuple[dict[tuple[str, str], str], int]:
    """The caption of every (split, image id) -> sha256 in ``images``, from the cache or the captioner;
    returns the captions and how many were new."""
    keys = {img: cache_key(sha, captioner.settings_key()) for img, sha in images.items()}
    captions = {img: (cache.get(k) or {}).get("caption") for img, k in keys.items()}
    missing = [img for img, caption in captions.items() if caption is None]
    if missing:
        pixels = [read_image(Path(images_dir) / split / f"{image_id}.png") for split, image_id in missing]
        for img, caption in zip(missing, captioner.caption(pixels), strict=True):
            captions[img] = sanitise_caption(caption)
            cache.put(keys[img], {"caption": captions[img], "captioner": captioner.settings_key()})
    return captions, len(missing)


def refine_captions(
    captions: list[str], task: str, refiner, cache: JsonCache, concurrency: int
) -> tuple[dict[str, dict], list[str]]:
    """Each distinct caption's refined prompt (and whether the template replaced a bad reply), from the
    cache or the refiner; returns them and the captions refined now."""
    unique = sorted(set(captions))
    keys = {c: cache_key(c, refiner.settings_key(task), task) for c in unique}
    refined: dict[str, dict] = {c: cache.get(keys[c]) for c in unique}

    def refine(caption: str) -> None:
        prompt, replaced = refiner.refine(caption, task)
        refined[caption] = {"prompt": prompt, "replaced_by_template": replaced}
        cache.put(keys[caption], refined[caption])

    todo = [c for c in unique if refined[c] is None]
    _map(refine, todo, concurrency, f"refine {task}")
    return refined, todo


def prompt_record(entry: dict, caption: str, refinement: dict, settings: PromptSettings) -> dict:
    """One line of prompts.jsonl: the clip, both prompts, the chosen one and where they came from."""
    scene, captioner = refinement["prompt"], settings.captioner
    chosen = settings.uniform if settings.strategy == "uniform" else scene
    return {
        "clip_id": entry["clip_id"],
        "image_id": entry["image_id"],
        "strategy": settings.strategy,
        "prompt": chosen,
        "sha256": hashlib.sha256(chosen.encode()).hexdigest(),
        "uniform_prompt": settings.uniform,
        "scene_prompt": scene,
        "caption": caption,
        "captioner": captioner.name,
        "captioner_model": getattr(captioner, "model_id", getattr(captioner, "model", "")),
        "refiner": settings.refiner.name,
        "refiner_model": settings.refiner.model,
        "replaced_by_template": refinement["replaced_by_template"],
    }


def write_prompt_files(folder: Path, records: list[dict]) -> None:
    write_text(folder / "prompt_uniform.txt", "".join(r["uniform_prompt"] + "\n" for r in records))
    write_text(folder / "prompt_scene.txt", "".join(r["scene_prompt"] + "\n" for r in records))
    write_text(folder / "prompt.txt", "".join(r["prompt"] + "\n" for r in records))
    write_jsonl(folder / "prompts.jsonl", records)


def build_prompts(
    task: str, dataset_dir: Path, images_dir: Path, settings: PromptSettings, cache_root: Path | None = None
) -> dict:
    """Write every split's prompt files for ``task``; returns counts for the log."""
    settings.refiner.check()  # before any captioning or request
    cache_root = Path(cache_root or cache_dir() / "prompts")
    splits = {split: _read_split(Path(dataset_dir) / split) for split in SPLITS}
    images = {(e["split"], e["image_id"]): e["source_sha256"] for rows in splits.values() for e in rows}
    captions, new_captions = caption_images(
        images, images_dir, settings.captioner, JsonCache(cache_root / "captions")
    )
    refined, todo = refine_captions(
        list(captions.values()),
        task,
        settings.refiner,
        JsonCache(cache_root / "refinements"),
        settings.concurrency,
    )
    for split, rows in splits.items():
        records = []
        for e in rows:
            caption = captions[(e["split"], e["image_id"])]
            scene = refined[caption]["prompt"]
            why = problem(scene, task, settings.budget)
            if why is not None:
                raise InputError(
                    f"{task} {e['clip_id']}: the scene prompt is invalid ({why}): {quote(scene)}"
                )
            records.append(prompt_record(e, caption, refined[caption], settings))
        write_prompt_files(Path(dataset_dir) / split, records)
    return {
        "clips": sum(len(rows) for rows in splits.values()),
        "captions_new": new_captions,
        "captions_cached": len(images) - new_captions,
        "refinements_new": len(todo),
        "refinements_cached": len(refined) - len(todo),
        "replaced_by_template": sum(refined[c]["replaced_by_template"] for c in todo),
    }


def run_prompts(params: Section, task: str, dataset: Path, images: Path) -> None:
    """Reads ``prompts.*`` (of ``prompts.uniform`` only the task's prompt) and ``model.profile`` (its text
    encoder's budget)."""
    settings = PromptSettings.from_params(params, tasks.check(task))
    counts = build_prompts(task, dataset, images, settings)
    print(
        f"{task} prompts ({settings.strategy} -> prompt.txt): "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
    )
