"""Image decoding rules, lossless video, and write-then-rename."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from progrestore.io.atomic import atomic_path, write_text
from progrestore.io.images import ImageDecodeError, ImageTooLarge, decode_image, read_image, write_png
from progrestore.io.video import read_video, write_video


def _encode(array: np.ndarray, ext: str = ".png") -> bytes:
    return cv2.imencode(ext, array)[1].tobytes()


def test_grayscale_becomes_three_equal_channels():
    gray = np.arange(48, dtype=np.uint8).reshape(6, 8)
    rgb = decode_image(_encode(gray), "gray.png")
    assert rgb.shape == (6, 8, 3) and all(np.array_equal(rgb[..., c], gray) for c in range(3))


def test_colour_channels_come_out_in_rgb_order():
    bgr = np.zeros((4, 4, 3), np.uint8)
    bgr[..., 0] = 200  # blue in OpenCV's order
    assert decode_image(_encode(bgr), "blue.png")[0, 0].tolist() == [0, 0, 200]


def test_alpha_is_composited_onto_white():
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., 2] = 255  # red
    bgra[0, 0, 3], bgra[0, 1, 3], bgra[1, :, 3] = 255, 0, 128
    rgb = decode_image(_encode(bgra), "rgba.png")
    assert rgb[0, 0].tolist() == [255, 0, 0]
    assert rgb[0, 1].tolist() == [255, 255, 255]
    assert rgb[1, 0].tolist() == [255, 127, 127]


def test_sixteen_bit_is_rounded_to_eight():
    values = np.array([[0, 257, 257 * 128, 65535, 257 * 10 + 128]], np.uint16)
    rgb16 = np.repeat(values[:, :, None], 3, axis=2)
    assert decode_image(_encode(rgb16), "deep.png")[0, :, 0].tolist() == [0, 1, 128, 255, 10]


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_truncated_file_is_named_in_the_error(tmp_path, ext):
    data = _encode(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8), ext)
    path = tmp_path / f"cut{ext}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageDecodeError, match=rf"cut\{ext}: not a readable image"):
        read_image(path)


def test_non_image_file_is_named_in_the_error(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not a picture")
    with pytest.raises(ImageDecodeError, match=r"notes\.png"):
        read_image(path)


def test_png_roundtrip(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    write_png(tmp_path / "a.png", rgb)
    assert np.array_equal(read_image(tmp_path / "a.png"), rgb)


def test_video_is_lossless_and_byte_deterministic(tmp_path):
    frames = np.random.default_rng(2).integers(0, 256, (9, 32, 48, 3), dtype=np.uint8)
    write_video(tmp_path / "a.mp4", frames, fps=5)
    write_video(tmp_path / "b.mp4", frames, fps=5)
    assert np.array_equal(read_video(tmp_path / "a.mp4"), frames)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def test_failed_write_leaves_neither_target_nor_temporary(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    write_text(target, "whole")
    assert target.read_text() == "whole" and list(tmp_path.iterdir()) == [target]


def test_safetensors_metadata_order_does_not_change_the_bytes(tmp_path):
    import torch

    from progrestore.io.tensors import save_tensors

    tensors = {"b": torch.arange(6.0).reshape(2, 3), "a": torch.ones(4)}
    blobs = set()
    for i in range(6):  # insertion orders differ; the bytes must not
        metadata = dict(
            sorted(
                {"height": "96", "width": "160", "frames": "9"}.items(),
                key=lambda kv: (kv[0] * (i + 1))[i % 3 :],
            )
        )
        save_tensors(tensors, tmp_path / f"{i}.safetensors", metadata)
        blobs.add((tmp_path / f"{i}.safetensors").read_bytes())
    assert len(blobs) == 1
    from safetensors import safe_open

    with safe_open(str(tmp_path / "0.safetensors"), "pt") as handle:
        assert handle.metadata() == {"frames": "9", "height": "96", "width": "160"}
        assert torch.equal(handle.get_tensor("b"), tensors["b"])


def test_a_damaged_jpeg_is_refused_by_name_and_libjpeg_stays_quiet(capfd):
    image = (np.random.default_rng(0).random((256, 256, 3)) * 255).astype(np.uint8)
    data = cv2.imencode(".jpg", image)[1].tobytes()
    assert decode_image(data, "good.jpg").shape == (256, 256, 3)
    damaged = data[:-200] + data[-2:]  # scan data cut short, the end marker kept: libjpeg makes up the rest
    with pytest.raises(ImageDecodeError, match=r"bad\.jpg: damaged JPEG data \(libjpeg: Corrupt JPEG data"):
        decode_image(damaged, "bad.jpg")
    assert "Corrupt JPEG" not in capfd.readouterr().err


def test_a_pixel_limit_is_kept_for_a_format_whose_header_pil_cannot_read(tmp_path, monkeypatch):
    """The header check leaves a file PIL cannot parse to the decoder; its decoded size is then checked."""
    import PIL.Image

    path = tmp_path / "photo.png"
    write_png(path, np.zeros((40, 64, 3), np.uint8))
    assert read_image(path, 64 * 40).shape == (40, 64, 3)  # at the limit: taken
    with pytest.raises(ImageTooLarge, match=r"photo\.png: 64x40, 2,560 pixels, more than the 2,559 "):
        read_image(path, 64 * 40 - 1)  # from the header

    def unknown(*_args, **_kwargs):
        raise PIL.Image.UnidentifiedImageError("cannot identify image file")

    monkeypatch.setattr(PIL.Image, "open", unknown)
    with pytest.raises(ImageTooLarge, match=r"photo\.png: 64x40, 2,560 pixels, more than the 2,559 "):
        read_image(path, 64 * 40 - 1)  # once decoded
