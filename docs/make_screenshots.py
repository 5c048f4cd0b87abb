"""Screenshots of the latent pages for the README, from a built report (run `autointerp report` first):

    python docs/make_screenshots.py $AUTOINTERP_HOME/reports/<sae folder> <latent>

Drives the system Chromium headless through Playwright, like tests/test_pages_browser.py."""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUT = Path(__file__).with_name("img")


def main(report: Path, latent: int) -> None:
    OUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 820})
        page.set_default_timeout(120_000)  # a busy machine is slow to paint 1,500 pixels of tokens
        page.goto((report / "index.html").as_uri())
        page.locator('th[data-col="detection auc"]').click()  # best own detection AUC first
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=OUT / "latent-index.png")
        page.goto((report / "latents" / f"{latent}.html").as_uri())
        page.set_viewport_size({"width": 1400, "height": 1500})
        page.screenshot(path=OUT / "latent-page.png")
        browser.close()
    print(f"wrote {OUT / 'latent-index.png'} and {OUT / 'latent-page.png'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
