"""The report in a real browser: headless Chromium renders index.html from disk (no server), a
screenshot is saved, and the test fails on a broken image or a missing section.

The page marks each <img> with data-ok once loaded (its own small script); Chromium's --dump-dom gives
the DOM after the load event, which this test parses. Without Chromium the test is skipped on a
developer machine but fails in CI (CI set), where .ci/run installs it.
"""

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from workbench.report.build import PARTS

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio"]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@pytest.fixture(scope="module")
def browser():
    path = _chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed, and CI needs the browser test (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium); CI runs this test")
    return path


def _run(browser: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [browser, *FLAGS, f"--user-data-dir={tmp / 'profile'}", "--virtual-time-budget=5000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)


class _Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.body, self.images, self.sections = {}, [], {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "img":
            self.images.append(a)
        elif tag == "section" and "data-status" in a:
            self.sections[a["id"]] = a["data-status"]


def _dump(browser: str, tmp: Path, page: Path) -> _Dom:
    res = _run(browser, tmp, "--dump-dom", page.resolve().as_uri())
    assert res.returncode == 0 and "<body" in res.stdout, res.stderr[-2000:]
    dom = _Dom()
    dom.feed(res.stdout)
    return dom


def test_report_renders_in_chromium(browser, tiny_run, tmp_path):
    _, report, _ = tiny_run
    dom = _dump(browser, tmp_path, report / "index.html")
    assert dom.body.get("data-images") == str(len(dom.images)) and len(dom.images) >= 8  # the load script ran
    broken = [img["src"] for img in dom.images if img.get("data-ok") != "1"]
    assert not broken, f"broken images: {broken}"
    assert dom.body.get("data-broken-images") == "0"
    expected = {f"gazenet-{p}" for p in PARTS} | {"provenance"}
    assert expected <= set(dom.sections), f"missing sections: {sorted(expected - set(dom.sections))}"
    assert all(s == "ok" for s in dom.sections.values()), dom.sections
    shot = report.parent / "report-screenshot.png"
    res = _run(browser, tmp_path, f"--screenshot={shot}", "--window-size=1280,4000", (report / "index.html").as_uri())
    assert res.returncode == 0 and shot.stat().st_size > 20000, res.stderr[-2000:]


def test_browser_check_catches_a_broken_image(browser, tiny_run, tmp_path):
    """The check can fail: remove one figure from a copy of the report and it is reported broken."""
    _, report, _ = tiny_run
    copy = tmp_path / "report"
    shutil.copytree(report, copy)
    victim = next(iter((copy / "figures").glob("*pareto*.png")))
    victim.unlink()
    dom = _dump(browser, tmp_path, copy / "index.html")
    broken = [img["src"] for img in dom.images if img.get("data-ok") != "1"]
    assert broken == [f"figures/{victim.name}"]
