"""Evaluation: per-frame metrics, methods to compare, reports, gates, and the real-world ReLoBlur set."""
