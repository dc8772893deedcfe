"""Loading a profile's backbone: the specification its family names (``Family.specification``), imported
here on first use, so that a stage imports the one family it runs."""

from __future__ import annotations

import importlib

from progrestore.config import Section
from progrestore.model.profiles import Profile
from progrestore.model.settings import ModelSettings
from progrestore.model.specification import PARTS, ModelSpecification

DEFAULT_SAMPLER = "default"  # ``<section>.scheduler``: the backbone family's official sampler


def specification_class(profile: Profile) -> type[ModelSpecification]:
    """The specification of ``profile``'s family (the model is not built)."""
    module, _, name = profile.family.specification.partition(":")
    return getattr(importlib.import_module(module), name)


def load_specification(settings: ModelSettings, parts: frozenset[str] = PARTS) -> ModelSpecification:
    """The ``parts`` of the backbone ``settings`` name, loaded."""
    return specification_class(settings.profile).load(settings, parts)


def sampler_setting(section: Section, settings: ModelSettings) -> str:
    """``<section>.scheduler``, one of the family's samplers; ``default`` is the family's own (its first)."""
    samplers = specification_class(settings.profile).samplers
    scheduler = section.choice("scheduler", (DEFAULT_SAMPLER, *samplers))
    return samplers[0] if scheduler == DEFAULT_SAMPLER else scheduler
