"""The README's screenshots, from a finished `make run` (or `autointerp run`, then `autointerp pages`):

    .venv/bin/python docs/make_screenshots.py [--config FILE] <coder folder under pages/> <latent>

writes docs/img/latent-index.png and latent-page.png from the latent pages, and docs/img/asset-graph.png from
the Dagster UI, which it starts (`autointerp ui` on a free port) and stops. Drives the system Chromium headless
through Playwright, like tests/test_pages_browser.py."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from autointerp_dagster.core.config import load_settings

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUT = Path(__file__).with_name("img")


def latent_pages(page: Page, folder: Path, latent: int) -> None:
    page.set_viewport_size({"width": 1400, "height": 820})
    page.goto((folder / "index.html").as_uri())
    page.locator('th[data-col="detection auc"]').click()  # best own detection AUC first
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=OUT / "latent-index.png")
    page.goto((folder / "latents" / f"{latent}.html").as_uri())
    page.set_viewport_size({"width": 1400, "height": 1500})
    page.screenshot(path=OUT / "latent-page.png")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def asset_graph(page: Page, config: str | None) -> None:
    """The global asset lineage of a running UI, once its code location has loaded."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("autointerp")), *(["--config", config] if config else []),
               "ui", "--port", str(port)]
    ui = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{url}/server_info", timeout=2)
                break
            except OSError:
                time.sleep(1)
        page.set_viewport_size({"width": 1600, "height": 1000})
        page.goto(f"{url}/asset-groups")
        page.wait_for_selector("text=interpretation", timeout=240_000)  # the asset groups, collapsed
        time.sleep(5)
        skip = page.get_by_role("button", name="Skip")  # the first visit's community notice, where it shows
        if skip.count():
            skip.click()
        page.mouse.click(1000, 300)
        page.keyboard.press("Alt+e")  # the graph's "Expand all groups"
        time.sleep(6)  # the layout settles
        page.screenshot(path=OUT / "asset-graph.png", clip={"x": 545, "y": 105, "width": 1055, "height": 895})
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="the settings file the run used")
    parser.add_argument("coder_folder", help="a folder under the home's pages/, e.g. gemma-3-270m__layers.6__...")
    parser.add_argument("latent", type=int)
    args = parser.parse_args()
    if args.config:
        os.environ["AUTOINTERP_CONFIG"] = args.config
    pages = load_settings().pages_dir / args.coder_folder
    OUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page()
        page.set_default_timeout(120_000)  # a busy machine is slow to paint 1,500 pixels of tokens
        latent_pages(page, pages, args.latent)
        asset_graph(page, args.config)
        browser.close()
    print(f"wrote {', '.join(str(OUT / n) for n in ('latent-index.png', 'latent-page.png', 'asset-graph.png'))}")


if __name__ == "__main__":
    main()
