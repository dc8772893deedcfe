"""An offline page for ``dvc plots show``: DVC's HTML template with vega inlined.

DVC's default page loads vega, vega-lite and vega-embed from a CDN, so offline its plots are blank. This
builds ``plots.html_template`` (``.dvc/config``) from the packages' npm tarballs, at the versions DVC's
renderer asks for, checked against the registry's sha512 integrity: their minified builds go into the
page, their licences into a comment above each.
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from progrestore.errors import InputError
from progrestore.io.atomic import write_text
from progrestore.io.cache import cache_dir


@dataclass(frozen=True)
class NpmPackage:
    name: str
    version: str
    integrity: str  # the registry's dist.integrity
    build: str  # the browser build inside the tarball

    @property
    def tarball(self) -> str:
        return f"https://registry.npmjs.org/{self.name}/-/{self.name}-{self.version}.tgz"


PACKAGES = (  # the versions dvc-render's vega renderer loads from its CDN
    NpmPackage(
        "vega",
        "5.20.2",
        "sha512-qmH7aD9GGPpssVdxL1xgcdxTbQzyRUeRR16Os385ymvQhiwCYQNA6+eXUPAZDTVLfk0RXu6Jzj6kUE5jQ80EVw==",
        "build/vega.min.js",
    ),
    NpmPackage(
        "vega-lite",
        "5.2.0",
        "sha512-Yxcg8MvYfxHcG6BbkaKT0oVCIMIcE19UvqIsEwBmyd/7h2nzW7oRnID81T8UrY7hpDrIr6wa2JADOT2dhGNErw==",
        "build/vega-lite.min.js",
    ),
    NpmPackage(
        "vega-embed",
        "6.18.2",
        "sha512-wcDyQPE4J5aiCDc3/suH5RQDvrKkjuLkhzUcbOLwEkNF8/+pp17tS0JghzEvAPNRg+5aG1/N2ydixq8Lk3dOlg==",
        "build/vega-embed.min.js",
    ),
)
TEMPLATE = Path(".dvc/offline_plots.html")  # .dvc/config: plots.html_template = offline_plots.html
PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")  # what DVC substitutes in a template
MARK = "written by progrestore fetch-plots-page"  # an earlier page of ours may be replaced, nothing else


def _verified(package: NpmPackage, data: bytes) -> bytes:
    algorithm, _, expected = package.integrity.partition("-")
    if base64.b64encode(hashlib.new(algorithm, data).digest()).decode() != expected:
        raise InputError(f"{package.tarball}: the download does not match its pinned {algorithm} integrity")
    return data


def tarball(package: NpmPackage, allow_fetch: bool = True) -> bytes:
    """The package's npm tarball, from the user cache or the registry (then cached), integrity-checked."""
    cached = cache_dir() / "npm" / f"{package.name}-{package.version}.tgz"
    if cached.is_file():
        return _verified(package, cached.read_bytes())
    if not allow_fetch:
        raise InputError(
            f"{cached} not found: run `progrestore fetch-plots-page` where the npm registry is reachable"
        )
    try:
        with urllib.request.urlopen(package.tarball, timeout=60) as response:
            data = _verified(package, response.read())
    except OSError as err:
        raise InputError(f"{package.tarball}: cannot download ({err})") from err
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".part")
    tmp.write_bytes(data)
    tmp.replace(cached)
    return data


def _members(data: bytes, *names: str) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        return [archive.extractfile(f"package/{name}").read().decode("utf-8") for name in names]


def page_template(allow_fetch: bool = True) -> str:
    """DVC's page with the three packages inlined; ``{plot_divs}`` is where DVC puts the plots."""
    scripts = []
    for package in PACKAGES:
        code, licence = _members(tarball(package, allow_fetch), package.build, "LICENSE")
        if any(placeholder in code for placeholder in PLACEHOLDERS):
            raise InputError(f"{package.name} {package.version}: its code contains a DVC placeholder")
        notice = licence.replace("--", "- -")  # an HTML comment cannot hold "--"
        scripts.append(
            f"<!-- {package.name} {package.version} ({package.tarball})\n{notice}-->\n<script>{code}</script>"
        )
    return (
        f'<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<!-- {MARK} -->\n'
        + "{refresh_tag}\n<title>DVC plots</title>\n"
        + "\n".join(scripts)
        + "\n<style>table { border-spacing: 15px; }</style>\n</head>\n<body>\n{plot_divs}\n</body>\n</html>\n"
    )


def write_page_template(out: Path = TEMPLATE, allow_fetch: bool = True) -> Path:
    """Write (or refresh an earlier) page at ``out``; a file there that this did not write is left alone."""
    out = Path(out)
    if out.exists() and MARK not in out.read_text(errors="replace")[:4096]:
        raise InputError(
            f"{out}: exists and was not written by progrestore fetch-plots-page; move it away first"
        )
    write_text(out, page_template(allow_fetch))
    return out
