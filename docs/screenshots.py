"""The README's pictures of `seqcli serve`'s page, taken in headless Chromium.

    python docs/screenshots.py RUN_SEQ2SEQ RUN_LM [--out docs]

Starts `seqcli serve` for each run on 127.0.0.1, fills the form as a user would, and saves
serve-seq2seq.png (outputs and attention maps) and serve-lm.png (a streamed sample).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def serve(run: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "seqcli", "serve", run, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/health", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seq2seq")
    parser.add_argument("lm")
    parser.add_argument("--out", default=str(Path(__file__).parent))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    servers = [serve(args.seq2seq), serve(args.lm)]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 900, "height": 700})
            page.goto(servers[0][1] + "/")
            page.wait_for_selector("body[data-ready='1']")
            page.fill("#inputs", "abcdef\nhigfedcba\ncab")
            page.click("#submit")
            page.wait_for_function("document.getElementById('status').textContent.startsWith('done')")
            page.screenshot(path=str(Path(args.out) / "serve-seq2seq.png"), full_page=True)
            page = browser.new_page(viewport={"width": 900, "height": 600})
            page.goto(servers[1][1] + "/")
            page.wait_for_selector("body[data-ready='1']")
            page.fill("#inputs", "The ")
            page.fill("#option-length", "240")
            page.fill("#option-seed", "1")
            page.click("#submit")
            page.wait_for_function("document.getElementById('status').textContent.startsWith('done')")
            page.screenshot(path=str(Path(args.out) / "serve-lm.png"), full_page=True)
            browser.close()
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
