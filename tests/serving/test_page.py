"""The page for people, in a real browser: headless Chromium (driven over the DevTools protocol)
uploads a clip with the API key and shows the probability, its uncertainty, the tube quality, the
Grad-CAM overlay and the model card. Skipped where Chromium is not installed, except in CI (CI=true,
set by .ci/run, which installs it): there a missing browser fails the tests."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import time

import httpx
import pytest

from tests.helpers_serving import KEYS, free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not IN_CI, reason="headless Chromium not installed (apt-get install chromium)"
)


class Page:
    """The smallest DevTools-protocol client: one page, commands answered in order."""

    def __init__(self, ws_url: str):
        import websocket

        self.ws, self.ids = websocket.create_connection(ws_url, timeout=60), itertools.count(1)

    def call(self, method: str, **params):
        i = next(self.ids)
        self.ws.send(json.dumps({"id": i, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == i:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg.get("result", {})

    def js(self, expr: str):
        return self.call("Runtime.evaluate", expression=expr, returnByValue=True)["result"].get("value")

    def wait(self, expr: str, timeout: float = 90.0):
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            if self.js(expr):
                return
            time.sleep(0.2)
        status = self.js("document.getElementById('status').innerText")
        raise TimeoutError(f"{expr} still false; status: {status}")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    if CHROMIUM is None:  # only in CI: elsewhere the module is skipped
        pytest.fail("headless Chromium is not installed: CI must run the page tests (.ci/run installs it "
                    "as root with apt-get install chromium; see its warning above)")  # fmt: skip
    port = free_port()
    proc = subprocess.Popen(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--remote-debugging-port={port}", "--remote-allow-origins=*",
         f"--user-data-dir={tmp_path_factory.mktemp('chromium')}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        t0 = time.perf_counter()
        while True:
            try:
                targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=1).json()
                ws = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
                break
            except (httpx.HTTPError, StopIteration):
                if time.perf_counter() - t0 > 30:
                    raise
                time.sleep(0.2)
        p = Page(ws)
        p.call("Page.enable")
        p.call("Runtime.enable")
        yield p
        p.ws.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _upload(page: Page, url: str, clip, key: str) -> None:
    page.call("Page.navigate", url=url + "/")
    page.wait("document.readyState === 'complete' && !!document.getElementById('video')")
    node = page.call(
        "DOM.querySelector", nodeId=page.call("DOM.getDocument")["root"]["nodeId"], selector="#video"
    )
    page.call("DOM.setFileInputFiles", files=[str(clip)], nodeId=node["nodeId"])
    page.js(f"document.getElementById('key').value = {json.dumps(key)}")
    page.js("document.getElementById('go').click()")


def test_upload_shows_probability_uncertainty_quality_overlay_and_card(page, server, clip):
    _upload(page, server.url, clip, KEYS[0])
    page.wait("!document.getElementById('result').hidden && !document.getElementById('card').hidden")
    p = float(page.js("document.getElementById('p').textContent"))
    assert 0.0 <= p <= 1.0
    assert page.js("document.getElementById('label').textContent") in ("pd", "control", "uncertain")
    assert "spread over 2 clips" in page.js("document.getElementById('uncertainty').textContent")
    assert "face_found_ratio" in page.js("document.getElementById('quality').innerText")
    assert page.js("document.getElementById('gif').src").startswith("data:image/gif;base64,")
    assert page.js("document.getElementById('gif').naturalWidth") > 0  # the browser decoded the overlay
    card = page.js("document.getElementById('cardbody').innerText")
    assert "medical device: no" in card and "test subject AUROC" in card


def test_a_wrong_key_is_shown_as_a_refusal(page, server, clip):
    _upload(page, server.url, clip, "not-the-key")
    page.wait("document.getElementById('status').innerText.includes('refused')")
    assert "401" in page.js("document.getElementById('status').innerText")
