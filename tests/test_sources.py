"""Source images: folders with bad files, scikit-image samples, DIV2K archives and their download."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from progrestore.config import Section
from progrestore.data import div2k
from progrestore.data.prepare import prepare_images
from progrestore.data.sources import SourceItem, list_sources
from progrestore.errors import DownloadError, InputError, ParamsError
from progrestore.io.images import ImageDecodeError, read_image


def _folder_section(path: Path, **extra) -> Section:
    folder = {"path": str(path), "val_fraction": 0.34} | extra
    return Section({"source": "folder", "folder": folder}, "data")


def _write_images(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(folder / "a_gray.png"), rng.integers(0, 256, (40, 70), dtype=np.uint8))
    cv2.imwrite(str(folder / "b_rgba.png"), rng.integers(0, 256, (50, 60, 4), dtype=np.uint8))
    cv2.imwrite(str(folder / "c_deep.png"), rng.integers(0, 65536, (64, 48, 3), dtype=np.uint16))


def test_folder_of_gray_rgba_and_16bit_images_is_prepared_as_rgb(tmp_path):
    _write_images(tmp_path / "src")
    items = list_sources(_folder_section(tmp_path / "src"))
    assert [(i.image_id, i.split) for i in items] == [
        ("a_gray", "train"),
        ("b_rgba", "train"),
        ("c_deep", "val"),
    ]
    manifest = prepare_images(items, tmp_path / "out", 32, 16, "band", skip_bad=False)
    assert len(manifest["images"]) == 3 and manifest["skipped"] == []
    for record in manifest["images"]:
        image = read_image(tmp_path / "out" / record["split"] / f"{record['image_id']}.png")
        assert image.shape == (16, 32, 3) and image.dtype == np.uint8
    assert manifest["images"][2]["upscaled"] is False and manifest["images"][0]["upscaled"] is False


def test_corrupt_file_stops_prepare_naming_it_and_leaves_no_output(tmp_path):
    _write_images(tmp_path / "src")
    (tmp_path / "src" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    items = list_sources(_folder_section(tmp_path / "src"))
    with pytest.raises(ImageDecodeError, match=r"broken\.png.*data\.on_bad_image: skip"):
        prepare_images(items, tmp_path / "out", 32, 16, "band", skip_bad=False)
    assert not (tmp_path / "out").exists()


def test_skip_option_records_the_bad_file(tmp_path):
    _write_images(tmp_path / "src")
    (tmp_path / "src" / "a0_notes.txt").write_text("not an image")  # sorts into train
    items = list_sources(_folder_section(tmp_path / "src"))
    manifest = prepare_images(items, tmp_path / "out", 32, 16, "band", skip_bad=True)
    assert [s["image_id"] for s in manifest["skipped"]] == ["a0_notes"]
    assert "a0_notes.txt: not a readable image" in manifest["skipped"][0]["skipped"]
    on_disk = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert on_disk == manifest and len(on_disk["images"]) == 3


def test_folder_with_train_and_val_subfolders_is_split_by_them(tmp_path):
    _write_images(tmp_path / "src" / "train")
    _write_images(tmp_path / "src" / "val")
    items = list_sources(_folder_section(tmp_path / "src"))
    assert sum(i.split == "val" for i in items) == 3 and sum(i.split == "train" for i in items) == 3


def test_missing_folder_and_unknown_sample_are_named(tmp_path):
    with pytest.raises(ParamsError, match=r"data\.folder\.path must be an existing folder"):
        list_sources(_folder_section(tmp_path / "nowhere"))
    sample = Section(
        {"source": "sample", "sample": {"train": ["astronaut", "mona_lisa"], "val": ["chelsea"]}}, "data"
    )
    with pytest.raises(ParamsError, match=r"data\.sample\.train.*'mona_lisa'"):
        list_sources(sample)


def test_sample_images_load_as_rgb():
    logo = SourceItem("logo", "train", "skimage:logo").load()  # RGBA in the wheel
    camera = SourceItem("camera", "train", "skimage:camera").load()  # grayscale
    assert logo.shape[2] == 3 and camera.shape[2] == 3


# --- DIV2K ------------------------------------------------------------------------------------------


def _png(seed: int) -> bytes:
    return cv2.imencode(".png", np.random.default_rng(seed).integers(0, 256, (24, 40, 3), dtype=np.uint8))[
        1
    ].tobytes()


def test_div2k_unpacked_folders_with_limits(tmp_path):
    for split, first in (("train", 1), ("val", 801)):
        folder = tmp_path / div2k.ARCHIVES[split].name
        folder.mkdir()
        for i in range(first, first + 3):
            (folder / f"{i:04d}.png").write_bytes(_png(i))
    section = Section(
        {
            "source": "div2k",
            "div2k": {"root": str(tmp_path), "download": False, "limit_train": 2, "limit_val": 1},
        },
        "data",
    )
    items = list_sources(section)
    assert [(i.image_id, i.split) for i in items] == [("0001", "train"), ("0002", "train"), ("0801", "val")]
    assert items[0].load().shape == (24, 40, 3)


def test_div2k_missing_without_download_names_the_expected_files(tmp_path):
    section = Section({"source": "div2k", "div2k": {"root": str(tmp_path), "download": False}}, "data")
    with pytest.raises(InputError, match=r"DIV2K_train_HR\.zip.*data\.div2k\.download: true"):
        list_sources(section)


def test_images_are_read_straight_from_a_zip(tmp_path):
    archive = tmp_path / "DIV2K_valid_HR.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("DIV2K_valid_HR/0801.png", _png(3))
        handle.writestr("DIV2K_valid_HR/0802.png", b"garbage")
    assert SourceItem("0801", "val", f"{archive}::DIV2K_valid_HR/0801.png").load().shape == (24, 40, 3)
    with pytest.raises(ImageDecodeError, match=r"0802\.png"):
        SourceItem("0802", "val", f"{archive}::DIV2K_valid_HR/0802.png").load()


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    payload = b""
    cut_after: int | None = None  # first response stops early, as a dropped connection would

    def do_GET(self):
        start = 0
        if "Range" in self.headers:
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
        body = self.payload[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.cut_after is not None:
            body, type(self).cut_after = body[: self.cut_after], None
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _RangeHandler.payload = bytes(range(256)) * 4000
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/file.zip"
    httpd.shutdown()


def test_download_resumes_an_interrupted_transfer_and_checks_sha256(tmp_path, server):
    payload = _RangeHandler.payload
    digest = hashlib.sha256(payload).hexdigest()
    _RangeHandler.cut_after = 300_000
    with pytest.raises(DownloadError, match="resumes"):
        div2k.download(server, tmp_path / "f.zip", digest, len(payload), timeout=5)
    assert (tmp_path / "f.zip.part").stat().st_size == 300_000 and not (tmp_path / "f.zip").exists()
    path = div2k.download(server, tmp_path / "f.zip", digest, len(payload), timeout=5)
    assert path.read_bytes() == payload and not (tmp_path / "f.zip.part").exists()


def test_download_with_a_wrong_checksum_is_removed(tmp_path, server):
    with pytest.raises(DownloadError, match="does not match"):
        div2k.download(server, tmp_path / "f.zip", "0" * 64, timeout=5)
    assert list(tmp_path.iterdir()) == []
