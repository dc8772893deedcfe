"""The backbone families by name (``Profile.family``): where a profile's specification is found."""

from __future__ import annotations

from progrestore.model.cogvideox.specification import CogVideoXImageToVideo
from progrestore.model.profiles import Profile
from progrestore.model.settings import ModelSettings
from progrestore.model.specification import PARTS, ModelSpecification

FAMILIES: dict[str, type[ModelSpecification]] = {"cogvideox": CogVideoXImageToVideo}


def specification_class(profile: Profile) -> type[ModelSpecification]:
    """The specification of ``profile``'s family (the model is not built)."""
    return FAMILIES[profile.family]


def load_specification(settings: ModelSettings, parts: frozenset[str] = PARTS) -> ModelSpecification:
    """The ``parts`` of the backbone ``settings`` name, loaded."""
    return specification_class(settings.profile).load(settings, parts)
