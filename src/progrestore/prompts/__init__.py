"""Prompt files: uniform and scene-adaptive prompts (captioner, then refiner), cached and validated."""
