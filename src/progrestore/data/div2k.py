"""DIV2K high-resolution archives: find a local copy, or download with resume and a sha256 check.

Train = 0001-0800 (``DIV2K_train_HR.zip``), val = 0801-0900 (``DIV2K_valid_HR.zip``). Images are read
straight out of the zip, so the 4 GB of archives never need unpacking; an unpacked folder
``DIV2K_train_HR/`` next to the zip is used instead when present.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from progrestore.errors import DownloadError, InputError

BASE_URL = "https://data.vision.ee.ethz.ch/cvl/DIV2K/"


@dataclass(frozen=True)
class Archive:
    name: str  # "DIV2K_train_HR"
    size: int
    sha256: str
    first: int
    last: int

    @property
    def zip_name(self) -> str:
        return f"{self.name}.zip"

    def members(self, limit: int | None) -> list[str]:
        last = self.last if limit is None else min(self.last, self.first + limit - 1)
        return [f"{self.name}/{i:04d}.png" for i in range(self.first, last + 1)]


# Sizes and digests: tensorflow/datasets url_checksums/div2k.txt.
ARCHIVES = {
    "train": Archive(
        "DIV2K_train_HR",
        3_530_603_713,
        "9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335",
        1,
        800,
    ),
    "val": Archive(
        "DIV2K_valid_HR",
        448_993_893,
        "20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc",
        801,
        900,
    ),
}


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, target: Path, sha256: str, size: int | None = None, timeout: float = 60.0) -> Path:
    """Fetch ``url`` into ``target``, resuming a ``.part`` file left by an earlier attempt.

    The file is renamed into place only after its sha256 matches; a mismatch deletes the partial
    file so that the next attempt starts clean.
    """
    target = Path(target)
    if target.is_file() and sha256_of(target) == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    done = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={done}-"} if done else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if done and response.status != 206:  # server ignored the range: start over
                done = 0
            expected = int(response.headers.get("Content-Length", -1))
            received = 0
            with (
                part.open("ab" if done else "wb") as out,
                tqdm(total=size or None, initial=done, unit="B", unit_scale=True, desc=target.name) as bar,
            ):
                while block := response.read(1 << 20):
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
        if 0 <= expected != received:
            raise DownloadError(f"connection closed after {received} of {expected} bytes")
    except (urllib.error.URLError, TimeoutError, OSError, DownloadError) as err:
        kept = part.stat().st_size if part.exists() else 0
        raise DownloadError(
            f"download of {url} failed ({err}); {part} keeps {kept} bytes and the next run resumes from there"
        ) from err
    actual = sha256_of(part)
    if actual != sha256:
        part.unlink()
        raise DownloadError(
            f"{url}: sha256 {actual} does not match the expected {sha256}; the file was removed"
        )
    part.replace(target)
    return target


def locate(root: Path, split: str, allow_download: bool, base_url: str = BASE_URL) -> Path:
    """Return the unpacked folder or the verified zip for ``split``, downloading it if allowed."""
    archive = ARCHIVES[split]
    root = Path(root)
    unpacked = root / archive.name
    if unpacked.is_dir():
        return unpacked
    zip_path = root / archive.zip_name
    if zip_path.is_file() and zip_path.stat().st_size == archive.size:
        return zip_path
    if not allow_download:
        raise InputError(
            f"DIV2K {split} images not found: expected {unpacked}/ or {zip_path} "
            f"({archive.size} bytes). Put them there (data.div2k.root) or set data.div2k.download: true"
        )
    return download(base_url + archive.zip_name, zip_path, archive.sha256, archive.size)
