"""Where the pipeline's files live, relative to the repository root: named once for stages and commands."""

from __future__ import annotations

from pathlib import Path

IMAGES_DIR = Path("data/images")  # prepare: <split>/<id>.png
IMAGES_MANIFEST = "manifest.json"  # beside them: framing and source of every image
DATASETS_DIR = Path("data/datasets")  # degrade: <task>/<split>/ in the CogVideoX finetune layout
CLIP_MANIFEST = "manifest.jsonl"  # in each split folder: one entry per clip
DEGRADE_SHEETS_DIR = Path("reports/degrade")
ENCODED_DIR = Path("data/encoded")  # encode: <task>/{video,text}.safetensors
MODELS_DIR = Path("models")  # train: <lora>/pytorch_lora_weights.safetensors
RESTORED_DIR = Path("data/restored")  # restore: <task>/<clip>.mp4
METRICS_DIR = Path("metrics")  # evaluate: <task>.json and <task>/ plot data (kept in git)
EVALUATE_SHEETS_DIR = Path("reports/evaluate")
