"""The autoencoder ceiling (method ``vae``, stage ``reconstruct``) and the model scored against it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from progrestore.errors import InputError
from progrestore.evaluate.evaluation import model_records
from progrestore.evaluate.frame_scorer import FrameScorer
from progrestore.infer.ceiling import reconstruct_clip
from progrestore.model.pipeline_backbone import to_uint8
from progrestore.model.sizing import from_model, to_model

from .helpers.tiny_training import tiny_model


def _pipelines_decode(model, clip: np.ndarray) -> np.ndarray:
    """The clip's posterior mode, scaled into the latent space sampling runs in and decoded the way each
    family's pipeline decodes its samples (CogVideoX: ``decode_latents``; Wan: its de-normalisation)."""
    vae = model.pipe.vae
    with torch.inference_mode():
        video = torch.from_numpy(clip).permute(3, 0, 1, 2)[None].float()
        mode = vae.encode(2.0 * (video / 255.0) - 1.0).latent_dist.mode()
        if model.settings.profile.family.name == "cogvideox":
            decoded = model.pipe.decode_latents((mode * vae.config.scaling_factor).permute(0, 2, 1, 3, 4))
        else:
            mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
            inverse_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
            sampled = (mode - mean) * inverse_std  # what a sample is: normalised latents
            decoded = vae.decode(sampled / inverse_std + mean, return_dict=False)[0]
        return to_uint8(model.pipe.video_processor.postprocess_video(decoded, output_type="np")[0])


@pytest.mark.parametrize("profile", ["tiny", "wan-tiny"])
def test_the_reconstruction_is_the_pipelines_own_decoding_of_the_clips_latents(profile):
    """What ``reconstruct`` computes without the latent scaling is what the pipeline would output had it
    sampled exactly the clip's latents, to one grey level on a few values: the pipeline's scaling there
    and back (CogVideoX's scaling factor, Wan's per-channel normalisation) rounds in float32, and whether
    that moves a pixel across a rounding boundary depends on the CPU's kernels (CogVideoX: bit for bit on
    an AVX-512 Xeon, 1 value in 138,240 on an AMD EPYC; Wan: 2.7e-5 of the values on both)."""
    model = tiny_model(profile)
    height, width = model.settings.height, model.settings.width
    clip = np.random.default_rng(0).integers(0, 256, (9, height, width, 3), dtype=np.uint8)
    ours, pipelines = model.reconstruct(clip), _pipelines_decode(model, clip)
    assert ours.shape == clip.shape and ours.dtype == np.uint8
    difference = np.abs(ours.astype(int) - pipelines.astype(int))
    assert difference.max() <= 1 and np.count_nonzero(difference) / difference.size < 1e-4
    assert np.array_equal(model.reconstruct(clip), ours)  # deterministic: the mode, not a sample
    assert not np.array_equal(ours, clip)  # a random VAE does not reconstruct


def test_a_clip_is_reconstructed_through_the_models_sizing_and_keeps_its_pixels_outside_the_window():
    """The 160x96 clip framed for a 2:1 model: the centre 160x80 window goes to 128x64 and back, as the
    model's own frames do (``model.sizing``); the rows above and below stay the clip's, frame by frame."""
    from dataclasses import replace

    model = tiny_model()
    model.settings = replace(model.settings, height=64, width=128)
    clip = np.random.default_rng(1).integers(0, 256, (9, 96, 160, 3), dtype=np.uint8)
    out = reconstruct_clip(model, clip)
    assert out.shape == clip.shape
    assert np.array_equal(out[:, :8], clip[:, :8]) and np.array_equal(out[:, 88:], clip[:, 88:])
    small = np.stack([to_model(frame, 64, 128) for frame in clip])
    assert np.array_equal(out, from_model(model.reconstruct(small), clip))
    assert not np.array_equal(out[:, 8:88], clip[:, 8:88])


def test_a_trajectory_is_scored_frame_by_frame_against_another():
    """Known answers: frame t offset by t grey levels from its reference has PSNR 20 log10(255 / t); a
    frame equal to its reference gets each metric's exact value."""
    rng = np.random.default_rng(2)
    references = rng.integers(10, 200, (4, 32, 48, 3), dtype=np.uint8)
    frames = references + np.arange(4, dtype=np.uint8)[:, None, None, None]
    scores = FrameScorer().score_against(frames, references)
    assert scores["psnr"][0] == math.inf and scores["ssim"][0] == 1.0 and scores["lpips"][0] == 0.0
    for t in (1, 2, 3):
        assert scores["psnr"][t] == pytest.approx(20 * math.log10(255 / t), abs=1e-9)
    assert all(0 < s < 1 for s in scores["ssim"][1:]) and all(v > 0 for v in scores["lpips"][1:])


def _record(folder, name: str, key: str, profile: str, size: list[int], window: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    record = {"profile": profile, "label": profile, "model_size": size, key: window}
    (folder / name).write_text(json.dumps(record))


def test_the_evaluation_refuses_a_ceiling_of_another_model_than_the_trajectories(tmp_path):
    window = {"x": 0, "y": 8, "width": 160, "height": 80}
    folders = {"model": tmp_path / "restored", "vae": tmp_path / "reconstructed"}
    _record(folders["model"], "restored.json", "restored_window", "tiny", [64, 128], window)
    _record(folders["vae"], "reconstructed.json", "reconstructed_window", "tiny", [64, 128], window)
    records = model_records(["identity", "vae", "model"], folders, "sr")
    assert set(records) == {"vae", "model"}
    _record(folders["vae"], "reconstructed.json", "reconstructed_window", "wan-tiny", [64, 128], window)
    with pytest.raises(
        InputError, match=r"different models or windows.*reconstruct: wan-tiny.*restore: tiny"
    ):
        model_records(["identity", "vae", "model"], folders, "sr")
    with pytest.raises(InputError, match=r"reconstructed\.json not found: run the reconstruct stage"):
        model_records(["identity", "vae"], {"vae": tmp_path / "nowhere"}, "sr")
