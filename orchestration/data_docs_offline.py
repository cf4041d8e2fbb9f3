"""GX Data Docs that work without internet: the scripts, styles and fonts its pages load from public CDNs are
vendored from the npm registry and the built pages rewritten to use the local copies.

GX 1.x writes the CDN addresses straight into its page templates (no setting moves them), so the built site is
post-processed instead: :func:`localise` copies the vendored files into ``<site>/static/vendor/`` and points every
page at them, relative to the page, so the site also works when copied elsewhere or opened from a share. Which
file replaces which address, and each package's version, licence and npm integrity, is in
``orchestration/data_docs_vendor.json``; ``python -m orchestration.data_docs_offline fetch`` (``make
data-docs-assets``, part of installing) fetches them once with ``npm pack`` into ``vendor/data-docs/`` (not
committed: about 1.9 MB of other projects' minified code) and checks each tarball against its recorded integrity.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from functools import cache
from pathlib import Path, PurePosixPath

from orchestration.resources import REPO_ROOT

log = logging.getLogger(__name__)

MANIFEST_PATH = Path(__file__).with_name("data_docs_vendor.json")
#: Where ``fetch`` puts the vendored files (``COLLAB_DATA_DOCS_VENDOR_DIR`` overrides it).
VENDOR_DIR = Path(os.environ.get("COLLAB_DATA_DOCS_VENDOR_DIR") or REPO_ROOT / "vendor" / "data-docs")
#: The folder of a built site the vendored files are copied to.
SITE_VENDOR = PurePosixPath("static/vendor")
_STAMP = ".manifest.json"


@cache
def manifest() -> dict:
    return json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))


def local_path(package: dict, file: str) -> PurePosixPath:
    """Where one file of a package lives under the vendor folder: ``<name>/<version>/<path in the package>`` (paths
    inside a package are kept, so a stylesheet's relative ``url(../webfonts/…)`` still resolves)."""
    return PurePosixPath(package["name"].split("/")[-1], package["version"], file)


def replacements() -> dict[str, PurePosixPath]:
    """CDN address → vendored file (relative to the vendor folder)."""
    found = {}
    for package in manifest()["packages"]:
        for file, urls in package["files"].items():
            for url in urls:
                found[url] = local_path(package, file)
    return found


def is_fetched(vendor_dir: Path = VENDOR_DIR) -> bool:
    """True when ``vendor_dir`` holds the files of the current manifest."""
    stamp = vendor_dir / _STAMP
    return stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) == manifest()


# --------------------------------------------------------------------------------------------------------------
# Fetching (install time)


def _sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _pack(npm: str, spec: str, destination: Path) -> tuple[Path, str]:
    """``npm pack`` one package version into ``destination``: the tarball and the integrity npm reports."""
    done = subprocess.run(
        [npm, "pack", "--json", "--pack-destination", str(destination), spec],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"npm pack {spec} failed: {done.stderr.strip()[-500:]}")
    [packed] = json.loads(done.stdout)
    return destination / packed["filename"], packed["integrity"]


def fetch(vendor_dir: Path = VENDOR_DIR, npm: str = "npm") -> Path:
    """Fetch every package of the manifest with ``npm pack``, check it against its integrity, and extract the files
    the pages need, each package's licence, and ``LICENSES.md`` into ``vendor_dir``. Nothing is replaced until all
    have been fetched and checked."""
    if is_fetched(vendor_dir):
        return vendor_dir
    if shutil.which(npm) is None:
        raise RuntimeError(f"{npm} is not installed: it fetches the Data Docs' scripts and styles from npm")
    with tempfile.TemporaryDirectory(prefix="data-docs-vendor-") as work:
        staging = Path(work) / "vendor"
        notice = [
            "# Vendored for GX Data Docs",
            "",
            "Fetched from the npm registry by `make data-docs-assets` (orchestration/data_docs_offline.py), each "
            "tarball checked against the integrity recorded in orchestration/data_docs_vendor.json.",
            "",
            "| package | version | licence | licence text |",
            "| --- | --- | --- | --- |",
        ]
        for package in manifest()["packages"]:
            spec = f"{package['name']}@{package['version']}"
            tarball, reported = _pack(npm, spec, Path(work))
            data = tarball.read_bytes()
            if reported != package["integrity"] or _sri(data) != package["integrity"]:
                raise RuntimeError(f"{spec}: the tarball's integrity {_sri(data)} is not the recorded one")
            wanted = list(package["files"])
            if package.get("license_file"):
                wanted.append(package["license_file"])
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
                for file in wanted:
                    member = archive.extractfile(f"package/{file}")
                    if member is None:
                        raise RuntimeError(f"{spec} has no {file}")
                    target = staging / local_path(package, file)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(member.read())
            licence = (
                f"{local_path(package, package['license_file'])}"
                if package.get("license_file")
                else package["license_note"]
            )
            notice.append(f"| {package['name']} | {package['version']} | {package['license']} | {licence} |")
        (staging / "LICENSES.md").write_text("\n".join(notice) + "\n", encoding="utf-8")
        (staging / _STAMP).write_text(json.dumps(manifest(), indent=1), encoding="utf-8")
        if vendor_dir.exists():
            shutil.rmtree(vendor_dir)
        vendor_dir.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staging), vendor_dir)
    return vendor_dir


# --------------------------------------------------------------------------------------------------------------
# Rewriting a built site (every run)

_TAG = re.compile(r"<(?:script|link|img|source|iframe)\b[^>]*>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r"""\b(src|href|srcset)\s*=\s*(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)
_CSS_URL = re.compile(r"""url\(\s*(["']?)([^"')]+)\1\s*\)|@import\s+(["'])([^"']+)\3""", re.IGNORECASE)
#: Attributes that only make sense for the CDN copy: ``crossorigin`` makes a browser refuse a file:// script.
_CDN_ONLY = re.compile(r"""\s+(?:integrity|crossorigin)(?:\s*=\s*(["']).*?\1)?""", re.IGNORECASE)


def _is_external(url: str) -> bool:
    return url.strip().lower().startswith(("http://", "https://", "//"))


def _relative(target: PurePosixPath, page: Path, site_dir: Path) -> str:
    return Path(os.path.relpath(site_dir / target, page.parent)).as_posix()


def _rewrite_html(text: str, page: Path, site_dir: Path, local: dict[str, PurePosixPath]) -> str:
    images = manifest()["gx_images"]

    def target_of(url: str) -> PurePosixPath | None:
        if url in local:
            return SITE_VENDOR / local[url]
        if url.startswith(images["prefix"]):
            return PurePosixPath(images["local"])
        return None

    def tag(match: re.Match) -> str:
        original = match.group(0)
        changed = False

        def attribute(found: re.Match) -> str:
            nonlocal changed
            target = target_of(found.group(3).strip())
            if target is None:
                return found.group(0)
            changed = True
            return f"{found.group(1)}={found.group(2)}{_relative(target, page, site_dir)}{found.group(2)}"

        rewritten = _ATTRIBUTE.sub(attribute, original)
        return _CDN_ONLY.sub("", rewritten) if changed else original

    return _TAG.sub(tag, text)


def _rewrite_css(text: str, sheet: Path, site_dir: Path) -> str:
    images = manifest()["gx_images"]

    def url(match: re.Match) -> str:
        address = match.group(2) or ""
        if not address.startswith(images["prefix"]):
            return match.group(0)
        return f"url('{_relative(PurePosixPath(images['local']), sheet, site_dir)}')"

    return _CSS_URL.sub(url, text)


def external_references(site_dir: Path) -> list[tuple[str, str]]:
    """Every address outside the site that a page or stylesheet of ``site_dir`` would load (not links a person may
    follow): ``(file relative to the site, address)``."""
    found = []
    for path in sorted(site_dir.rglob("*")):
        if path.suffix == ".html":
            for tag in _TAG.findall(path.read_text(encoding="utf-8", errors="replace")):
                for _, _, url in _ATTRIBUTE.findall(tag):
                    if _is_external(url):
                        found.append((path.relative_to(site_dir).as_posix(), url))
        elif path.suffix == ".css":
            for match in _CSS_URL.finditer(path.read_text(encoding="utf-8", errors="replace")):
                url = match.group(2) or match.group(4) or ""
                if _is_external(url):
                    found.append((path.relative_to(site_dir).as_posix(), url))
    return found


def localise(site_dir: Path, vendor_dir: Path = VENDOR_DIR) -> list[tuple[str, str]]:
    """Point the built site ``site_dir`` at local copies of its CDN scripts, styles and fonts (copied into
    ``static/vendor/``) and at GX's own logo in ``static/images/``; return what still points outside (nothing,
    unless GX started loading something new, or the files were never fetched: ``make data-docs-assets``)."""
    site_dir = Path(site_dir)
    if not is_fetched(vendor_dir):
        left = external_references(site_dir)
        log.warning(
            "GX Data Docs will load %d scripts and styles from the internet: the local copies are missing "
            "(make data-docs-assets fetches them)",
            len({url for _, url in left}),
        )
        return left
    target = site_dir / SITE_VENDOR
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(vendor_dir, target, ignore=shutil.ignore_patterns(_STAMP))
    local = replacements()
    for page in site_dir.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        rewritten = _rewrite_html(text, page, site_dir, local)
        if rewritten != text:
            page.write_text(rewritten, encoding="utf-8")
    for sheet in (site_dir / "static" / "styles").glob("*.css"):
        text = sheet.read_text(encoding="utf-8")
        rewritten = _rewrite_css(text, sheet, site_dir)
        if rewritten != text:
            sheet.write_text(rewritten, encoding="utf-8")
    left = external_references(site_dir)
    if left:
        log.warning(
            "GX Data Docs still load from outside the site (GX may have added assets; add them to %s): %s",
            MANIFEST_PATH.name,
            ", ".join(sorted({url for _, url in left})),
        )
    return left


def is_offline(site_dir: Path) -> bool:
    """True for a built site that loads nothing from outside itself."""
    return (Path(site_dir) / SITE_VENDOR).is_dir() and not external_references(Path(site_dir))


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["fetch"])
    parser.add_argument("--vendor-dir", default=str(VENDOR_DIR))
    parser.add_argument("--npm", default="npm")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        folder = fetch(Path(args.vendor_dir), npm=args.npm)
    except RuntimeError as error:
        print(f"data-docs-assets: {error}", file=sys.stderr)
        return 1
    size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    print(f"Data Docs assets: {folder} ({size / 1e6:.1f} MB, {len(manifest()['packages'])} npm packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
