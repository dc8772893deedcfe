"""The ``model`` block, validated once into :class:`ModelSettings`, which every model stage and command uses."""

from __future__ import annotations

from dataclasses import dataclass

from progrestore.config import Section
from progrestore.model.profiles import Profile, profile_from_params

# ``model.positional_embedding`` for a profile with a learned table (CogVideoX-5B-I2V, trained for 49
# frames), at 9 frames. ``sincos`` (default): diffusers' replacement by a 3D sin-cos embedding, which every
# diffusers-based finetune (the official one included) trains and samples with; ``sliced``: the official
# SAT code's first rows of the learned table; ``none``: no absolute embedding (rotary only), for other sizes.
POSITIONAL_EMBEDDINGS = ("sincos", "sliced", "none")


@dataclass(frozen=True)
class ModelSettings:
    """The ``model`` block, validated: which backbone, from where, and the size it works at.

    ``height`` x ``width`` is the size of every frame the model sees, in encode, train, restore and
    ``progrestore restore`` alike (null in params.yaml: the profile's native size).
    """

    profile: Profile
    path: str | None
    seed: int
    positional_embedding: str | None  # profiles with a learned table: one of POSITIONAL_EMBEDDINGS
    height: int
    width: int

    @property
    def label(self) -> str:
        return f"{self.profile.label}, {self.height}x{self.width}"


def trained_for(settings: ModelSettings) -> dict:
    """What a LoRA depends on, recorded in its ``about.json`` and checked before sampling with it."""
    return {
        "profile": settings.profile.name,
        "height": settings.height,
        "width": settings.width,
        "positional_embedding": settings.positional_embedding,
    }


def model_size(params: Section) -> tuple[int, int]:
    """(height, width) every frame the model sees is brought to: ``model.height`` / ``model.width``, or
    the profile's native size. Reads only those and ``model.profile`` (what the scoring window needs)."""
    model = params.section("model")
    profile = profile_from_params(model)
    size, step = {}, profile.size_step
    for name, native in (("height", profile.height), ("width", profile.width)):
        value = model.optional_integer(name, step)
        if value is not None and (value % step or value > 4096):
            raise model.fail(
                name, f"null or a multiple of {step} up to 4096 ({profile.architecture}'s size step)"
            )
        size[name] = native if value is None else value
    return size["height"], size["width"]


def model_settings(params: Section) -> ModelSettings:
    model = params.section("model")
    profile = profile_from_params(model)
    path = None if model.raw("path") is None else model.text("path")
    embedding = None
    if model.raw("positional_embedding") is not None:
        if not profile.learned_pe:
            raise model.fail(
                "positional_embedding", f"null: {profile.name} has no learned positional embedding"
            )
        embedding = model.choice("positional_embedding", POSITIONAL_EMBEDDINGS)
    elif profile.learned_pe:
        embedding = POSITIONAL_EMBEDDINGS[0]
    height, width = model_size(params)
    if embedding in ("sincos", "sliced") and (height, width) != (profile.height, profile.width):
        raise model.fail(
            "height",
            f"null or {profile.height} (with model.width {profile.width}): {profile.name}'s learned positional "
            f"embedding fixes its size; set model.positional_embedding: none to run at {height}x{width}",
        )
    return ModelSettings(profile, path, model.integer("seed", 0), embedding, height, width)
