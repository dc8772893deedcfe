"""Backbones: the ``model`` settings, the profiles, one :class:`ModelSpecification` per family, and
bringing frames to the model's size and back."""
