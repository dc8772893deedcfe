"""Training and sampling agree for the Wan family (``wan-tiny``): the same conditioning, the same
flow-matching conventions.

1. The transformer's input. TI2V conditions by replacement: the first latent frame is the clean image
   latent, its tokens at timestep 0. For each sampler with and without CFG, the transformer's input at
   the first sampling step (through ``ModelSpecification.sample``) must carry
   ``WanImageToVideo.conditioning(first_frame)`` bit for bit in the model's dtype on its first latent
   frame, and per-token timesteps of 0 on that frame's tokens and the sampler's first timestep elsewhere;
   ``training_loss`` must feed the transformer the same first frame and per-token timesteps.
2. The training optimum samples back to the training clip. For one clip, the velocity ``(x_t - x_0) / s``
   (``s`` = timestep / 1000) makes ``training_loss`` zero (checked, at two noise levels and a dropped
   image); put in the transformer's place, every sampler must integrate it back to the clip's training
   latents. Measured 2026-12-02 (8 steps; mean squared error over the latent frames after the first,
   against 6.55-6.66 for the repeated first frame): UniPC 3.6-3.8e-7 (its integer timesteps), DPM++
   1.5e-7, Euler 5-7e-16; the bound is 1e-5 of the repeated frame's.

Why not overfit a LoRA and sample, as ``test_sampling_agrees.py`` does for CogVideoX (measured
2026-12-02): the tiny transformer is 24 wide, but a token is a 1x2x2 patch of 48 latent channels (192
numbers), so it can neither see nor cancel most of the noise: the sampled latents keep about 7/8 of it
whatever it learns. On two clips (rank 32 on every linear layer, lr 3e-3, 300 steps) the loss stays near
0.9 and the sampled distance to the training latents is 1.05-1.07 for every sampler (untrained 1.55-1.58,
the repeated first frame 0.023 and 0.040, with the posterior narrowed). A 240-wide twin (4 heads x 60,
rank 128, 1,000 steps) did no better (loss 0.88-1.1). Check 2 tests the same agreement exactly, with the
optimum in the place of a memorised LoRA.

Planted faults (2026-12-02, each in a scratch edit of ``model/wan/specification.py``, reverted): the flow
target's sign flipped (``x_0 - noise``), the timestep scale 999 instead of 1000, the noise scaled by 0.9
in ``x_t``: each fails all 12 cases of check 2; UniPC and DPM++ sampling with ``prediction_type``
epsilon fails their 8; the first frame not replaced in training fails check 1's training cases; the
sampling condition drawn from the posterior instead of its mode fails every sampling case of check 1.
Euler at shift 1 passes both (the optimum of one clip is exact on any schedule); ``tests/test_wan.py``
checks every sampler's shift.
"""

from __future__ import annotations

import pytest
import torch

from progrestore.model.specification import Sampling

from .helpers.tiny_training import ramp_clip, tiny_model

FRAMES, HEIGHT, WIDTH = 9, 96, 160
CLIPS = ("brightening", "darkening")
SAMPLINGS = [(sampler, guidance) for sampler in ("unipc", "dpm", "euler") for guidance in (1.0, 6.0)]


@pytest.fixture(scope="module")
def wan():
    model = tiny_model("wan-tiny")
    prompt = model.encode_prompt("The light changes.")
    return model, prompt, model.encode_prompt("")


def _first_call(module: torch.nn.Module, run) -> dict:
    """The keyword arguments of ``module``'s first forward call while ``run()`` runs."""
    calls = []

    def record(_module, _args, kwargs):
        calls.append({k: v.detach().clone() for k, v in kwargs.items() if isinstance(v, torch.Tensor)})

    hook = module.register_forward_pre_hook(record, with_kwargs=True)
    try:
        run()
    finally:
        hook.remove()
    return calls[0]


def _check_input(model, call: dict, first_frame: torch.Tensor, timestep: torch.Tensor) -> None:
    hidden, timesteps = call["hidden_states"], call["timestep"]
    condition = model.conditioning(first_frame).to(model.dtype)
    assert hidden.dtype == model.dtype
    assert torch.equal(hidden[:, :, :1], condition), float((hidden[:, :, :1] - condition).abs().max())
    _, p_h, p_w = model.denoiser.config.patch_size
    per_frame = hidden.shape[3] // p_h * (hidden.shape[4] // p_w)
    assert timesteps.shape == (1, hidden.shape[2] * per_frame)
    assert torch.equal(timesteps[0, :per_frame], torch.zeros_like(timesteps[0, :per_frame]))
    rest = timesteps[0, per_frame:]
    assert torch.equal(rest, torch.full_like(rest, float(timestep))), (rest.unique(), timestep)


@pytest.mark.parametrize(("sampler", "guidance"), SAMPLINGS)
@pytest.mark.parametrize("clip", CLIPS)
def test_sampling_conditions_the_transformer_on_the_image_latent(wan, clip, sampler, guidance):
    model, prompt, negative = wan
    frames = ramp_clip(clip == "brightening", FRAMES, HEIGHT, WIDTH)
    sampling = Sampling(2, guidance, 0, sampler, dynamic_cfg=False)
    call = _first_call(model.denoiser, lambda: model.sample(frames[0], prompt, negative, FRAMES, sampling))
    first_timestep = model.pipe.scheduler.timesteps[0]  # the sampler ``sample`` set up
    _check_input(model, call, torch.from_numpy(frames[0]).permute(2, 0, 1).contiguous(), first_timestep)


@pytest.mark.parametrize("clip", CLIPS)
def test_training_conditions_the_transformer_as_sampling_does(wan, clip):
    model, prompt, _ = wan
    frames = ramp_clip(clip == "brightening", FRAMES, HEIGHT, WIDTH)
    latents = model.encode_video(frames, torch.Generator().manual_seed(0))
    first_frame = torch.from_numpy(frames[0]).permute(2, 0, 1).contiguous()
    denoiser = model.denoiser
    generator = torch.Generator().manual_seed(1)
    call = _first_call(
        denoiser,
        lambda: model.training_loss(denoiser, latents, first_frame, prompt, generator, image_dropout=0.0),
    )
    # the noise level training drew: the timestep of every token after the first frame's
    _check_input(model, call, first_frame, call["timestep"][0, -1])
    assert 0 < float(call["timestep"][0, -1]) <= 1000


def _optimal_velocity(transformer: torch.nn.Module, clean: torch.Tensor):
    """A forward for ``transformer`` that returns, for the one clip ``clean`` (1, C, T', h, w), the velocity
    that minimises the flow-matching loss as its docstring states it: ``(x_t - x_0) / s`` at the noise
    level ``s`` = timestep / 1000 of the tokens after the first frame (on the first frame, a given image's
    velocity is never used: it is replaced in sampling and left out of the loss)."""

    def forward(hidden_states, timestep, encoder_hidden_states, return_dict=False, **_):
        level = timestep.reshape(-1)[-1].to(torch.float32) / 1000.0
        return (((hidden_states.float() - clean) / level).to(hidden_states.dtype),)

    return forward


def _decoder_input(model, run) -> torch.Tensor:
    """The latents ``run()`` hands the VAE decoder, normalised back as the transformer sees them."""
    from progrestore.model.wan.conditioning import normalise

    vae, received = model.pipe.vae, []
    decode = vae.decode

    def spy(latents, *args, **kwargs):
        received.append(latents.detach().clone())
        return decode(latents, *args, **kwargs)

    vae.decode = spy
    try:
        run()
    finally:
        del vae.decode
    return normalise(vae, received[-1])


@pytest.mark.parametrize(("sampler", "guidance"), SAMPLINGS)
@pytest.mark.parametrize("clip", CLIPS)
def test_the_training_optimum_samples_back_to_the_training_clip(wan, monkeypatch, clip, sampler, guidance):
    """Training and sampling agree on the flow-matching conventions (target ``noise - x_0``, noise level
    = timestep / 1000, the noised latents): the velocity that makes ``training_loss`` zero for a clip, put
    in the transformer's place, is integrated by every sampler back to that clip's training latents."""
    model, prompt, negative = wan
    frames = ramp_clip(clip == "brightening", FRAMES, HEIGHT, WIDTH)
    latents = model.encode_video(frames, torch.Generator().manual_seed(0)).clone()
    clean = latents.permute(1, 0, 2, 3)[None]
    monkeypatch.setattr(model.denoiser, "forward", _optimal_velocity(model.denoiser, clean))
    first_frame = torch.from_numpy(frames[0]).permute(2, 0, 1).contiguous()
    for seed, dropout in ((1, 0.0), (2, 0.0), (3, 1.0)):  # two noise levels, and a text-to-video step
        loss = model.training_loss(
            model.denoiser, latents, first_frame, prompt.clone(), torch.Generator().manual_seed(seed), dropout
        )
        assert float(loss) < 1e-9, (seed, float(loss))
    sampling = Sampling(8, guidance, 0, sampler, dynamic_cfg=False)
    sampled = _decoder_input(model, lambda: model.sample(frames[0], prompt, negative, FRAMES, sampling))
    error = float(((sampled - clean) ** 2)[:, :, 1:].mean())
    repeated = float(((clean[:, :, :1] - clean) ** 2)[:, :, 1:].mean())  # the clip's own change
    assert error < 1e-5 * repeated, (error, repeated)
