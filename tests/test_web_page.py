"""The web page at `/` in headless Chromium: pick a file, transcribe it with speakers, read the
rendered transcript, click a segment to play from there, download SRT, see an error; a
screenshot is kept in tests/artifacts/web_page.png."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import REPO, shared_path
from server_fixtures import running_server

import polyasr
from polyasr.formats import to_srt
from polyasr.server.config import ServerConfig

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OPTIONS = polyasr.TranscribeOptions(beam_size=1, temperatures=(0.0,))
RECORD_STATUS = """
window.statusSeen = [];
new MutationObserver(() => window.statusSeen.push(
  document.getElementById("status-text").textContent)).observe(
  document.getElementById("status-text"), {childList: true, characterData: true, subtree: true});
"""


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    if not CHROMIUM.exists():
        message = "Debian's chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=str(CHROMIUM),
            args=FLAGS,
            headless=True,
            accept_downloads=True,
            viewport={"width": 1100, "height": 760},
        )
        yield context
        context.close()


def test_page_transcribes_plays_and_downloads(browser_context, whisper_base, tmp_path):
    audio = shared_path("data", "en", "jfk.16k.flac")
    speakers = polyasr.DiarizeOptions(
        segmentation_model=str(
            shared_path("models", "pyannote-segmentation-3.0", "pytorch_model.bin")
        ),
        embedding_model=str(
            shared_path("models", "campplus-zh-en-common", "campplus_cn_en_common.pt")
        ),
    )
    expected = whisper_base.transcribe(audio, OPTIONS, diarize=speakers)
    config = ServerConfig(options=OPTIONS, speakers=speakers)
    with running_server({"whisper-base": whisper_base}, config) as (url, _):
        page = browser_context.new_page()
        page.goto(url)
        page.wait_for_selector("#model option[value='whisper-base']", state="attached")
        page.evaluate(RECORD_STATUS)
        page.set_input_files("#file", str(audio))
        page.check("#diarize")
        page.click("#go")
        page.wait_for_selector("#segments li", timeout=120_000)
        rows = page.locator("#segments li")
        spoken = [s for s in expected.segments if s.text.strip()]
        assert rows.count() == len(spoken)
        for i, segment in enumerate(spoken):
            assert rows.nth(i).locator(".text").inner_text() == segment.text.strip()
            assert rows.nth(i).locator(".speaker").inner_text() == segment.speaker
        assert "ask not what your country can do for you" in expected.text.lower()
        seen = page.evaluate("window.statusSeen")
        assert any(s.startswith("Uploading") for s in seen)
        assert any(s.startswith("Transcribing") for s in seen)
        assert page.inner_text("#status-text").startswith("Done in")

        last = spoken[-1]
        rows.nth(len(spoken) - 1).click()
        played = page.evaluate("document.getElementById('player').currentTime")
        assert played == pytest.approx(last.start, abs=0.3)

        page.select_option("#format", "srt")
        with page.expect_download() as download:
            page.click("#download")
        assert download.value.suggested_filename == "jfk.16k.srt"
        assert Path(download.value.path()).read_text(encoding="utf-8") == to_srt(expected)

        artifacts = REPO / "tests" / "artifacts"
        artifacts.mkdir(exist_ok=True)
        page.screenshot(path=str(tmp_path / "web_page.png"), full_page=True)
        shutil.copy(tmp_path / "web_page.png", artifacts / "web_page.png")

        page.set_input_files(
            "#file", {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not audio" * 9}
        )
        page.click("#go")
        page.wait_for_selector("#error:not([hidden])")
        assert "cannot decode the uploaded file 'notes.txt'" in page.inner_text("#error")


def test_page_asks_for_the_api_key_and_uses_it(browser_context):
    tiny = polyasr.load(shared_path("golden", "whisper-tiny-80"), device="cpu", dtype="float32")
    with running_server({"tiny": tiny}, ServerConfig(api_key="k2")) as (url, _):
        page = browser_context.new_page()
        page.goto(url)
        page.wait_for_selector("#error:not([hidden])")
        assert "cannot list models: missing API key" in page.inner_text("#error")
        assert page.locator("#model option").count() == 0
        page.fill("#api-key", "k2")
        page.dispatch_event("#api-key", "change")
        page.wait_for_selector("#model option[value='tiny']", state="attached")
        assert page.is_hidden("#error")
