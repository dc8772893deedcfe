"""Inference: restoration trajectories for the val clips and for a user's own image."""
