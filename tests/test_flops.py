"""The transformer's FLOP accounting against counts written out by hand from the configs."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig

from progrestore.model.cogvideox.components import tiny_components
from progrestore.model.cogvideox.configs import (
    REAL_TRANSFORMERS,
    TEXT_TOKENS,
    TINY_LAYOUTS,
    TINY_TRANSFORMER,
)
from progrestore.model.cogvideox.flops import (
    ForwardFlops,
    forward_flops,
    token_parameters,
    training_step_flops,
    video_tokens,
)


def _linear(inputs: int, outputs: int) -> int:
    return inputs * outputs + outputs  # weight and bias


def _hand_count(cfg: dict) -> dict:
    """Parameters by what they act on, from the config's numbers and diffusers' layer shapes."""
    inner = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    time, p, p_t = cfg["time_embed_dim"], cfg["patch_size"], cfg.get("patch_size_t")
    layer_norm = 2 * inner  # scale and shift
    block = (
        4 * _linear(inner, inner)  # to_q, to_k, to_v, to_out.0 on text and video tokens
        + _linear(inner, 4 * inner)  # feed-forward
        + _linear(4 * inner, inner)
        + 2 * layer_norm  # norm1.norm, norm2.norm
        + 2 * 2 * cfg["attention_head_dim"]  # norm_q, norm_k (per head)
    )
    if p_t:  # 1.5: an nn.Linear over p_t x p x p patches, with a bias whatever patch_bias says
        patch = _linear(cfg["in_channels"] * p * p * p_t, inner)
    else:  # 1.0: a p x p convolution
        patch = cfg["in_channels"] * inner * p * p + (inner if cfg.get("patch_bias", True) else 0)
    video = patch + 2 * layer_norm + _linear(inner, p * p * (p_t or 1) * cfg["out_channels"])
    ofs = cfg.get("ofs_embed_dim")
    sample = (
        cfg["num_layers"] * 2 * _linear(time, 6 * inner)  # norm1.linear, norm2.linear: shift, scale, gate x 2
        + _linear(inner, time)  # time_embedding
        + _linear(time, time)
        + (2 * _linear(ofs, ofs) if ofs else 0)  # ofs_embedding (1.5)
        + _linear(time, 2 * inner)  # norm_out.linear
    )
    return {
        "video": video,
        "text": _linear(cfg["text_embed_dim"], inner),
        "joint": cfg["num_layers"] * block,
        "sample": sample,
        "inner": inner,
    }


@pytest.mark.parametrize("layout", ["1.5", "1.0"])
def test_tiny_counts_equal_the_hand_count(layout):
    transformer = tiny_components(layout, 0)["transformer"]
    counts = token_parameters(transformer)
    hand = _hand_count(TINY_TRANSFORMER | TINY_LAYOUTS[layout])
    assert (counts.video, counts.text, counts.joint, counts.sample) == (
        hand["video"],
        hand["text"],
        hand["joint"],
        hand["sample"],
    )
    assert counts.per_video_token == hand["joint"] + hand["video"]
    assert counts.per_text_token == hand["joint"] + hand["text"]
    assert (counts.inner_dim, counts.blocks) == (hand["inner"], TINY_TRANSFORMER["num_layers"])
    # every parameter is counted once
    assert counts.total == sum(p.numel() for p in transformer.parameters())


@pytest.mark.parametrize(("layout", "video"), [("1.5", 2 * 6 * 10), ("1.0", 3 * 6 * 10)])
def test_tiny_forward_flops_equal_the_hand_count(layout, video):
    # 9 frames at 96x160: 3 latent frames (1.5: padded to 4, in temporal patches of 2), 6 x 10 patches
    transformer = tiny_components(layout, 0)["transformer"]
    assert video_tokens(transformer.config, 9, 96, 160) == video
    hand = _hand_count(TINY_TRANSFORMER | TINY_LAYOUTS[layout])
    tokens = video + TEXT_TOKENS
    linear = 2 * (
        (hand["joint"] + hand["video"]) * video
        + (hand["joint"] + hand["text"]) * TEXT_TOKENS
        + hand["sample"]
    )
    attention = TINY_TRANSFORMER["num_layers"] * 2 * 2 * tokens * tokens * hand["inner"]
    assert forward_flops(token_parameters(transformer), video) == ForwardFlops(linear, attention)


def test_a_lora_on_the_blocks_counts_per_token():
    transformer = tiny_components("1.5", 0)["transformer"]
    before = token_parameters(transformer)
    rank = 4
    transformer.add_adapter(LoraConfig(r=rank, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    after = token_parameters(transformer)
    inner = before.inner_dim
    assert after.joint - before.joint == TINY_TRANSFORMER["num_layers"] * 4 * 2 * rank * inner
    assert (after.video, after.text, after.sample) == (before.video, before.text, before.sample)
    assert after.total == sum(p.numel() for p in transformer.parameters())


def test_a_parameter_of_no_known_module_is_refused():
    transformer = tiny_components("1.0", 0)["transformer"]
    transformer.register_parameter("stray", torch.nn.Parameter(torch.zeros(3)))
    with pytest.raises(ValueError, match="stray"):
        token_parameters(transformer)


def test_training_step_flops():
    forward = ForwardFlops(linear=10, attention=1)
    # forward + recomputed forward + backward (inputs' gradients: 1x linear, 2x attention)
    assert training_step_flops(forward, gradient_checkpointing=True) == 2 * 11 + 10 + 2
    assert training_step_flops(forward, gradient_checkpointing=False) == 11 + 10 + 2


@pytest.mark.parametrize(
    ("name", "size", "video", "per_video_token", "total"),
    [
        ("cogvideox1.5-5b-i2v", (768, 1360), 8160, 4_759_223_936, 5_571_594_880),
        ("cogvideox-5b-i2v", (480, 720), 4050, 4_758_634_048, 5_570_479_680),
    ],
)
def test_real_architectures_on_the_meta_device(name, size, video, per_video_token, total):
    from diffusers import CogVideoXTransformer3DModel

    with torch.device("meta"):
        transformer = CogVideoXTransformer3DModel(**REAL_TRANSFORMERS[name])
    counts = token_parameters(transformer)
    hand = _hand_count(REAL_TRANSFORMERS[name])
    assert (counts.video, counts.text, counts.joint, counts.sample) == (
        hand["video"],
        hand["text"],
        hand["joint"],
        hand["sample"],
    )
    # the figures BENCHMARKS.md states (the total is the count the CPU build measured)
    assert counts.per_video_token == per_video_token
    assert counts.per_text_token == 4_770_614_784
    assert counts.total == total == sum(p.numel() for p in transformer.parameters())
    assert video_tokens(transformer.config, 9, *size) == video
