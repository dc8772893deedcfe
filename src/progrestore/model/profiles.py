"""Model profiles: which backbone, at which native size, from where; the one list the ``model.profile``
parameter chooses from. A profile names its family, whose :class:`ModelSpecification` does the work.

- ``tiny`` / ``tiny-1.0``: randomly initialised models of the same diffusers classes as CogVideoX 1.5 /
  1.0 (a small ``T5EncoderModel`` with a SentencePiece tokenizer trained locally), built with a fixed
  seed and saved in the hub's folder layout, from which they load as a real profile does.
  They run on 2 CPU cores; their results are plumbing, not quality, and are labelled so.
- ``cogvideox1.5-5b-i2v``: native 768x1360, the paper's clip size.
- ``cogvideox-5b-i2v``: native 480x720 (learned positional embedding); other sizes need
  ``model.positional_embedding: none``.
Real weights come from ``model.path`` (hub id or local folder); bf16 on GPU, fp32 on CPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from progrestore.config import Section
from progrestore.model.cogvideox.configs import SIZE_STEP, TEXT_TOKENS


@dataclass(frozen=True)
class Profile:
    name: str
    family: str  # the model specification that builds and runs it (``model.families.FAMILIES``)
    architecture: str  # its name in labels
    layout: str  # the family's variant, e.g. CogVideoX "1.0" or "1.5"
    tiny: bool
    height: int
    width: int
    text_tokens: int  # the text encoder's sequence length: the prompt budget
    size_step: int  # frame sizes must be multiples of it
    learned_pe: bool = False  # a learned positional embedding fixes the latent height and width
    default_path: str | None = None

    @property
    def label(self) -> str:
        if self.tiny:
            return (
                f"{self.name}: randomly initialised tiny {self.architecture} ({self.layout} layout) - "
                "plumbing, not quality"
            )
        return f"{self.name}: LoRA-fine-tuned {self.architecture} {self.layout} I2V"


_COGVIDEOX = {
    "family": "cogvideox",
    "architecture": "CogVideoX",
    "text_tokens": TEXT_TOKENS,
    "size_step": SIZE_STEP,
}
PROFILES = {
    "tiny": Profile("tiny", layout="1.5", tiny=True, height=96, width=160, **_COGVIDEOX),
    "tiny-1.0": Profile(
        "tiny-1.0", layout="1.0", tiny=True, height=96, width=160, learned_pe=True, **_COGVIDEOX
    ),
    "cogvideox1.5-5b-i2v": Profile(
        "cogvideox1.5-5b-i2v",
        layout="1.5",
        tiny=False,
        height=768,
        width=1360,
        default_path="THUDM/CogVideoX1.5-5B-I2V",
        **_COGVIDEOX,
    ),
    "cogvideox-5b-i2v": Profile(
        "cogvideox-5b-i2v",
        layout="1.0",
        tiny=False,
        height=480,
        width=720,
        learned_pe=True,
        default_path="THUDM/CogVideoX-5b-I2V",
        **_COGVIDEOX,
    ),
}


def profile_from_params(model: Section) -> Profile:
    name = model.choice("profile", tuple(PROFILES))
    return PROFILES[name]
