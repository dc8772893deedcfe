"""Captioners: an image in, one sentence describing its scene out.

- ``heuristic`` (offline default): a deterministic sentence built from what can be measured in the image:
  brightness, colourfulness, the dominant hues, edge density, a bright sky band, a central subject. It
  knows no objects; records label it ``heuristic`` so it is never mistaken for a vision-language caption.
- ``llava``: LLaVA through transformers (``LlavaForConditionalGeneration`` + its processor), hub id or
  local folder (refused in one line when it lacks a file), batched, greedy, on the GPU in bf16 when there
  is one (fp32 on CPU).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from progrestore import portable
from progrestore.errors import InputError

HUE_NAMES = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink")
HUE_EDGES = (10, 22, 35, 85, 100, 130, 150, 170)  # OpenCV hue (0..180) upper bounds; red wraps at 180
LLAVA_PROMPT = "USER: <image>\nDescribe the scene of this photograph in one sentence. ASSISTANT:"
# What a LLaVA folder needs, as llava-hf/llava-1.5-7b-hf publishes it; each entry: any one of these files.
LLAVA_FILES = (
    ("config.json",),  # without it transformers builds a default, 7B-sized model and fails on the weights
    ("processor_config.json",),  # patch size and strategy: without them expanding <image> fails mid-caption
    ("preprocessor_config.json",),
    ("tokenizer.json", "tokenizer.model"),
)
WEIGHTS = ("model.safetensors", "pytorch_model.bin")  # each alone, or shards beside <name>.index.json


def missing_llava_files(folder: Path) -> list[str]:
    """What a LLaVA checkpoint in ``folder`` lacks (nothing: complete), the shards its weight index names too."""
    missing = [" or ".join(names) for names in LLAVA_FILES if not any((folder / n).is_file() for n in names)]
    for weights in WEIGHTS:
        index = folder / f"{weights}.index.json"
        if (folder / weights).is_file():
            return missing
        if index.is_file():
            shards = set(json.loads(index.read_text())["weight_map"].values())
            return missing + sorted(shard for shard in shards if not (folder / shard).is_file())
    return [*missing, "the weights (" + " or ".join(f"{w}, sharded or not" for w in WEIGHTS) + ")"]


def _hue_name(hue: np.ndarray) -> np.ndarray:
    index = np.searchsorted(np.array(HUE_EDGES), hue, side="right")
    return np.where(index >= len(HUE_EDGES), 0, index)  # past pink wraps back to red


class HeuristicCaptioner:
    name = "heuristic"
    model = "rules-v2"  # v2: CPU-independent measurements

    def settings_key(self) -> str:
        return f"{self.name}/{self.model}"

    def caption(self, images: list[np.ndarray]) -> list[str]:
        return [self.describe(image) for image in images]

    @staticmethod
    def describe(image: np.ndarray) -> str:
        with portable.opencv_baseline():  # prompt files are stage outputs: the same bytes on every CPU
            hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
            gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
            edges = float((cv2.Canny(gray, 80, 160) > 0).mean())
        hue, sat, val = hsv[..., 0], hsv[..., 1] / 255.0, hsv[..., 2] / 255.0
        brightness = float(hsv[..., 2].mean()) / 255.0  # a mean of integers: exact in any order
        light = (
            "dark"
            if brightness < 0.25
            else "dim"
            if brightness < 0.45
            else "well-lit"
            if brightness < 0.7
            else "bright"
        )
        saturation = float(hsv[..., 1].mean()) / 255.0
        colour = (
            "muted" if saturation < 0.15 else "softly coloured" if saturation < 0.35 else "richly coloured"
        )
        parts = [f"A {light}, {colour} scene"]
        chromatic = (sat > 0.2) & (val > 0.15)
        if chromatic.mean() > 0.05:
            counts = np.bincount(_hue_name(hue[chromatic]), minlength=len(HUE_NAMES)) / chromatic.sum()
            top = [HUE_NAMES[i] for i in np.argsort(-counts, kind="stable")[:2] if counts[i] > 0.15]
            if top:
                parts.append(f"dominated by {' and '.join(top)} tones")
        else:
            parts.append("in greys and neutral tones")
        parts.append(
            "with smooth surfaces"
            if edges < 0.03
            else "with moderate texture"
            if edges < 0.08
            else "full of fine detail"
        )
        height, width = gray.shape
        top_band, rest = hsv[: height // 3], hsv[height // 3 :]
        sky_hue = _hue_name(top_band[..., 0].ravel())
        if top_band[..., 2].mean() > rest[..., 2].mean() + 20 and np.isin(sky_hue, (4, 5)).mean() > 0.4:
            parts.append("under an open sky")
        centre = float(hsv[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4, 2].mean()) / 255.0
        if abs(centre - brightness) > 0.06:
            side = "darker" if centre > brightness else "lighter"
            parts.append(f"around a central subject against a {side} background")
        return ", ".join(parts) + "."


@dataclass
class LlavaCaptioner:
    """LLaVA-1.5-style captioning; ``model``/``processor`` may be given directly (tests build tiny ones)."""

    model_id: str
    batch_size: int = 8
    max_new_tokens: int = 60
    model: object = None
    processor: object = None
    name: str = field(default="llava", init=False)

    def settings_key(self) -> str:
        return f"{self.name}/{self.model_id}/{self.max_new_tokens}/{LLAVA_PROMPT}"

    def _load(self) -> None:
        folder = Path(self.model_id)
        if folder.is_dir() and (missing := missing_llava_files(folder)):
            raise InputError(
                f"prompts.llava.model: the folder {folder} lacks {', '.join(missing)}; give a complete LLaVA "
                "checkpoint folder (the files of llava-hf/llava-1.5-7b-hf)"
            )
        import torch
        from transformers import AutoProcessor, LlavaForConditionalGeneration

        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        try:
            self.processor = AutoProcessor.from_pretrained(self.model_id)
            self.model = LlavaForConditionalGeneration.from_pretrained(self.model_id, dtype=dtype).to(device)
        except OSError as err:
            raise InputError(
                f"prompts.llava.model: cannot load {self.model_id!r} ({err.__class__.__name__}); give a local "
                "folder with the weights, or a hub id on a machine that can reach the hub"
            ) from err

    def caption(self, images: list[np.ndarray]) -> list[str]:
        import torch

        if self.model is None:
            self._load()
        self.processor.tokenizer.padding_side = "left"  # decoder-only generation pads on the left
        captions = []
        for start in range(0, len(images), self.batch_size):
            batch = images[start : start + self.batch_size]
            inputs = self.processor(
                images=batch, text=[LLAVA_PROMPT] * len(batch), return_tensors="pt", padding=True
            )
            inputs = inputs.to(self.model.device)
            if "pixel_values" in inputs:
                inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
            with torch.inference_mode():
                out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
            new_tokens = out[:, inputs["input_ids"].shape[1] :]
            captions += [
                " ".join(text.split())
                for text in self.processor.batch_decode(new_tokens, skip_special_tokens=True)
            ]
        return captions
