"""The paper's published numbers, which our reports set beside their own (light: no torch, so that the
paper report reads them without the scoring code)."""

from __future__ import annotations

# Table I: per-frame LPIPS of the paper's fine-tuned model on the ReLoBlur test set, frames 1..9
PAPER_TABLE_I_LPIPS = (0.335, 0.330, 0.323, 0.319, 0.316, 0.318, 0.316, 0.317, 0.317)
TABLE_I_SOURCE = "paper, Table I: per-frame LPIPS of the fine-tuned model on the ReLoBlur test set"
TABLE_I_METRIC = "lpips"  # the registry's name of the metric Table I reports
