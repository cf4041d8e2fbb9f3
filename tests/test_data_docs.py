"""GX Data Docs work without internet: every script, style and font is a local copy, and the pages render in a
browser that may not reach anything outside the machine (issue 12, item 7)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

from orchestration import data_docs_offline as offline
from tests.cdp import Chromium

ARTIFACTS = Path(__file__).parent / "artifacts" / "data_docs"
GX_TEMPLATES = Path(__import__("great_expectations").__file__).parent / "render" / "view" / "templates"
#: What a page may load: itself and its own files, inline data, the browser's own pages.
LOCAL_SCHEMES = ("file://", "data:", "about:", "blob:", "chrome-error:", "chrome://")
NEEDS_ASSETS = "the Data Docs' local copies are missing: `make data-docs-assets` fetches them (needs npm)"


def _fake_vendor(folder: Path) -> Path:
    """A vendor folder with every file of the manifest (placeholder bytes) and its stamp."""
    for package in offline.manifest()["packages"]:
        for file in package["files"]:
            path = folder / offline.local_path(package, file)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"/* {package['name']} {file} */")
    (folder / offline._STAMP).write_text(json.dumps(offline.manifest()))
    return folder


def _fake_site(site: Path) -> None:
    """Two pages at different depths with GX's CDN tags, and GX's stylesheet with its logo URL."""
    head = (
        '<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>\n'
        '<script src="https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js" integrity="sha384-x"'
        ' crossorigin="anonymous"></script>\n'
        '<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>\n'
        '<img src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=20260101T0Z"/>\n'
        '<a href="https://greatexpectations.io">GX</a>\n'
    )
    (site / "validations" / "suite" / "run").mkdir(parents=True)
    (site / "index.html").write_text(head)
    (site / "validations" / "suite" / "run" / "batch.html").write_text(head)
    (site / "static" / "styles").mkdir(parents=True)
    (site / "static" / "styles" / "data_docs_default_styles.css").write_text(
        ".logo { background: url('https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/full_logo_dark.png')"
        " 0 0 no-repeat; }"
    )


def test_localise_points_every_page_at_its_local_copies(tmp_path):
    vendor, site = _fake_vendor(tmp_path / "vendor"), tmp_path / "site"
    _fake_site(site)
    assert len(offline.external_references(site)) == 9  # 4 per page (the link to GX's site is not loaded) + css

    assert offline.localise(site, vendor) == []
    index = (site / "index.html").read_text()
    assert 'href="static/vendor/bootstrap/4.3.1/dist/css/bootstrap.min.css"' in index
    assert '<script src="static/vendor/popper.js/1.12.9/dist/umd/popper.min.js"></script>' in index  # no SRI/CORS
    assert 'src="static/vendor/vega/5.33.1/build/vega.min.js"' in index
    assert '<img src="static/images/logo-long.png"/>' in index
    assert '<a href="https://greatexpectations.io">' in index  # a link a person may follow stays
    deep = (site / "validations" / "suite" / "run" / "batch.html").read_text()
    assert 'src="../../../static/vendor/vega/5.33.1/build/vega.min.js"' in deep
    css = (site / "static" / "styles" / "data_docs_default_styles.css").read_text()
    assert "url('../images/logo-long.png')" in css
    assert (site / "static" / "vendor" / "vega" / "5.33.1" / "build" / "vega.min.js").exists()
    assert offline.is_offline(site)


def test_without_local_copies_the_site_stays_as_gx_built_it(tmp_path, caplog):
    site = tmp_path / "site"
    _fake_site(site)
    before = (site / "index.html").read_text()
    assert len(offline.localise(site, tmp_path / "never-fetched")) == 9
    assert (site / "index.html").read_text() == before
    assert "make data-docs-assets" in caplog.text
    assert not offline.is_offline(site)


def test_every_cdn_address_in_gx_templates_has_a_local_copy():
    """A GX upgrade that loads something new fails here, not in a user's browser without internet."""
    addresses = set()
    for template in GX_TEMPLATES.glob("*.j2"):
        addresses |= set(re.findall(r"""(?:src|href)=["'](https://[^"']+)["']""", template.read_text()))
    known = set(offline.replacements())
    images = offline.manifest()["gx_images"]["prefix"]
    assert {a for a in addresses if not a.startswith(images) and "greatexpectations.io" not in a} <= known


@pytest.fixture(scope="module")
def vendored() -> Path:
    assert offline.is_fetched(), NEEDS_ASSETS
    return offline.VENDOR_DIR


def test_the_vendored_scripts_are_the_files_gx_pins_on_the_cdn(vendored):
    """GX's templates pin popper and bootstrap by Subresource Integrity: the npm copies are the same bytes."""
    imports = (GX_TEMPLATES / "js_script_imports.j2").read_text()
    pinned = dict(re.findall(r'src="https://[^"]*/([\w.-]+\.min\.js)" integrity="sha384-([^"]+)"', imports))
    assert set(pinned) == {"popper.min.js", "bootstrap.min.js"}
    for path in vendored.rglob("*.min.js"):
        if path.name in pinned:
            digest = base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()
            assert digest == pinned[path.name], path


def _requests(browser: Chromium) -> list[str]:
    return [
        event["params"]["request"]["url"]
        for event in browser.events
        if event.get("method") == "Network.requestWillBeSent"
    ]


PAGE_STATE = """(async () => {
  await document.fonts.ready;
  const style = (selector, property) => {
    const element = document.querySelector(selector);
    return element ? getComputedStyle(element)[property] : null;
  };
  return {
    jquery: typeof window.jQuery === 'function' ? jQuery.fn.jquery : null,
    bootstrapTable: typeof (window.jQuery && jQuery.fn.bootstrapTable) === 'function',
    vegaEmbed: typeof window.vegaEmbed === 'function',
    navbarDisplay: style('.navbar', 'display'),
    containerPaddingLeft: style('.container-fluid', 'paddingLeft'),
    iconFont: style('.fas', 'fontFamily'),
    iconFontLoaded: document.fonts.check('900 16px "Font Awesome 6 Free"'),
    tableRows: document.querySelectorAll('table tbody tr').length,
    noRecords: document.querySelectorAll('.no-records-found').length,
  };
})()"""


def test_data_docs_render_in_a_browser_with_no_way_out(bundled_run, vendored, tmp_path):
    index = bundled_run.data_docs
    assert index is not None and index.exists()
    assert offline.external_references(index.parent) == []
    validation = next(iter(sorted((index.parent / "validations").rglob("fct_rtt_provider_month.html"))))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    states = {}
    with Chromium(tmp_path / "profile", width=1400, height=1000) as browser:
        browser.open_page()
        # every request that is not the machine's own files fails, as on a network without internet
        browser.call("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*", "ftp://*"]})
        for name, page in (("index", index), ("validation", validation)):
            browser.navigate(page.resolve().as_uri())
            browser.wait_for("document.readyState === 'complete'", timeout=30)
            browser.wait_for("document.querySelectorAll('table tbody tr').length > 0", timeout=20)
            states[name] = browser.evaluate(PAGE_STATE)
            browser.screenshot(ARTIFACTS / f"{name}.png", settle=1.5)
        outside = [url for url in _requests(browser) if not url.startswith(LOCAL_SCHEMES)]
    assert outside == [], f"requests left the machine: {outside}"
    for name, state in states.items():
        assert state["jquery"] == "3.7.1", (name, state)
        assert state["bootstrapTable"] and state["vegaEmbed"], (name, state)
        assert state["navbarDisplay"] == "flex", (name, state)  # Bootstrap's .navbar, not a plain block
        assert state["containerPaddingLeft"] == "48px", (name, state)  # Bootstrap's pl-5
        assert state["tableRows"] > 0 and state["noRecords"] == 0, (name, state)
    # the index's tables are drawn by bootstrap-table from data in the page: one row per suite at least
    assert states["index"]["tableRows"] >= 10  # a page of the validation results
    assert "Font Awesome 6 Free" in states["validation"]["iconFont"] and states["validation"]["iconFontLoaded"]
