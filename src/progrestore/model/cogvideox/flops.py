"""FLOPs of the CogVideoX transformer, counted from the model's own modules: which parameters act per token.

"2 x parameters x tokens" overcounts this model by about 17 %: the adaLN modulation linears (``norm1.linear``
and ``norm2.linear`` of every block, ``norm_out.linear``) and the time and ofs embeddings act once per
sample, on the timestep embedding. The rest acts per token, and CogVideoX attends jointly over text and
video: a block's norms, q/k/v/out projections and feed-forward run on the 226 text tokens as well as on
the video tokens (``CogVideoXAttnProcessor2_0`` and ``CogVideoXBlock`` concatenate the two), while the
patch embedding's text projection sees only text, and its video projection, the final norms and
``proj_out`` only video. A LoRA attached to the blocks counts with them (its forward is 2 FLOP per
parameter and token too). Norm scales and biases are elementwise, not matrix products, but are counted
where they act: under 1e-4 of the total.
"""

from __future__ import annotations

from dataclasses import dataclass

from progrestore.model.cogvideox.conditioning import latent_frames, padding_frames
from progrestore.model.cogvideox.configs import TEXT_TOKENS

VAE_SPATIAL = 8  # the VAE's spatial compression
_VIDEO_ONLY = ("patch_embed", "norm_final", "norm_out", "proj_out")  # top-level modules that see video only


@dataclass(frozen=True)
class TokenParameters:
    """Parameter counts by what they act on; every parameter of the model is in exactly one of the four."""

    video: int  # video tokens only: patch projection, norm_final, norm_out's norm, proj_out
    text: int  # text tokens only: patch_embed.text_proj
    joint: int  # every token, text and video: the blocks (less their adaLN linears)
    sample: int  # once per sample: time and ofs embeddings, the adaLN modulation linears
    inner_dim: int  # attention width (heads x head dim)
    blocks: int

    @property
    def per_video_token(self) -> int:
        return self.video + self.joint

    @property
    def per_text_token(self) -> int:
        return self.text + self.joint

    @property
    def total(self) -> int:
        return self.video + self.text + self.joint + self.sample


@dataclass(frozen=True)
class ForwardFlops:
    """One sample's forward pass: the parameters' products and attention's score and value products."""

    linear: int
    attention: int

    @property
    def total(self) -> int:
        return self.linear + self.attention


def token_parameters(transformer) -> TokenParameters:
    """Walk a ``CogVideoXTransformer3DModel`` (any device, meta included; LoRA-wrapped or not) and sort its
    parameters by the tokens they act on; a parameter outside the known modules is an error, not a guess."""
    from diffusers.models.embeddings import TimestepEmbedding
    from diffusers.models.normalization import AdaLayerNorm, CogVideoXLayerNormZero

    per_sample = set()
    for module in transformer.modules():
        if isinstance(module, TimestepEmbedding):
            per_sample |= {id(p) for p in module.parameters()}
        elif isinstance(module, CogVideoXLayerNormZero | AdaLayerNorm):  # modulation from the timestep only
            per_sample |= {id(p) for p in module.linear.parameters()}
    text_only = {id(p) for p in transformer.patch_embed.text_proj.parameters()}
    counts = {"video": 0, "text": 0, "joint": 0, "sample": 0}
    for name, parameter in transformer.named_parameters():
        top = name.split(".", 1)[0]
        if id(parameter) in per_sample:
            kind = "sample"
        elif id(parameter) in text_only:
            kind = "text"
        elif top == "transformer_blocks":
            kind = "joint"
        elif top in _VIDEO_ONLY:
            kind = "video"
        else:
            raise ValueError(f"{name}: no rule says which tokens this parameter acts on")
        counts[kind] += parameter.numel()
    blocks = transformer.transformer_blocks
    return TokenParameters(**counts, inner_dim=blocks[0].attn1.inner_dim, blocks=len(blocks))


def video_tokens(config, num_frames: int, height: int, width: int) -> int:
    """Video tokens of a ``num_frames`` x ``height`` x ``width`` clip for a transformer ``config``: latent
    frames (padded for 1.5 as the pipeline does) over ``patch_size_t``, times the latent grid over the patch."""
    count = latent_frames(num_frames, config.temporal_compression_ratio)
    count += padding_frames(count, config.patch_size_t)
    p = config.patch_size
    return count // (config.patch_size_t or 1) * (height // VAE_SPATIAL // p) * (width // VAE_SPATIAL // p)


def forward_flops(counts: TokenParameters, video: int, text: int = TEXT_TOKENS) -> ForwardFlops:
    """One sample's forward at ``video`` + ``text`` tokens: 2 FLOP per parameter and token it acts on, and
    per block the scores Q K^T and their product with V over the joint sequence (2 x 2 x tokens^2 x width)."""
    linear = 2 * (counts.per_video_token * video + counts.per_text_token * text + counts.sample)
    attention = 4 * (video + text) ** 2 * counts.inner_dim * counts.blocks
    return ForwardFlops(linear, attention)


def training_step_flops(forward: ForwardFlops, gradient_checkpointing: bool) -> int:
    """One LoRA step: the forward, then the backward, which for frozen weights needs only the inputs'
    gradients (one product per forward product) and for attention twice its forward (dV, dP, dQ, dK); with
    gradient checkpointing each block's forward runs again. The LoRA's own weight gradients (r128: about 3 %
    of the linear work) are left out."""
    forwards = 2 if gradient_checkpointing else 1
    return forwards * forward.total + forward.linear + 2 * forward.attention


def sampling_flops(forward: ForwardFlops, steps: int) -> int:
    """``steps`` denoising steps with classifier-free guidance: two forwards each (one batch of 2)."""
    return steps * 2 * forward.total
