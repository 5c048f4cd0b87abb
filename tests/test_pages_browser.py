"""The latent pages in a real headless browser (Debian's Chromium driven by Playwright), opened from disk
(file://), the way a researcher opens them: the index loads, sorts and searches; a latent page shows its scores
and its examples with tokens shaded by activation; bad input (failed latents, an SAE with no explanations) is
stated on the page. `make test` installs Chromium when it is missing."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pytest

from autointerp_dagster.core.pages import write_pages
from autointerp_dagster.core.store import writes
from autointerp_dagster.core.store.tables import EXAMPLES

from .pages_data import DETECTION_AUC, EXPLANATION, FAILED, LATENTS, OTHER, SAE, build_store

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    home = tmp_path_factory.mktemp("pages-browser")
    store = build_store(home)
    writes.write_explanation_draws(store, SAE, 3, 4, "default-abc", "local", "tiny-judge", [
        {"sae": SAE, "latent": 3, "explainer": "default-abc", "backend": "local", "model": "tiny-judge", "draw": k,
         "status": "ok", "explanation": text, "choice_auc": auc, "heldout_auc": auc - 0.05, "chosen": k == 1,
         "prompt_tokens": 90, "completion_tokens": 8} for k, (text, auc) in enumerate([("numbers", 0.6),
                                                                                      (EXPLANATION[3], 0.9)])])
    store.replace_rows("examples", pa.Table.from_pylist([
        {"sae": SAE, "latent": 3, "set": held, "idx": idx, "row": 20 + idx, "start": 0, "quantile": None,
         "tokens": [" the", " LORD"], "activations": [0.0, 2.0 if held == "select" else 0.0], "normalized": [0, 1]}
        for held in ("select", "select_random") for idx in range(2)], schema=EXAMPLES), "false")  # added, none replaced
    return {sae: write_pages(store, sae, home / "pages") for sae in (SAE, OTHER)}


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip("no Chromium: `make test` installs it (apt-get install -y chromium)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("requestfailed", lambda request: errors.append(f"failed request {request.url}"))
    yield page
    page.close()
    assert errors == []


def _latents_shown(page) -> list[int]:
    return [int(x) for x in page.locator("#latents tbody tr").evaluate_all("rows => rows.map(r => r.dataset.latent)")]


def test_index_sorts_and_searches(reports, page):
    page.goto(reports[SAE].index.as_uri())
    assert page.locator("h1").inner_text() == SAE
    assert _latents_shown(page) == sorted(LATENTS)
    assert "5 of 5 rows" in page.locator("#count").inner_text()
    assert "1 latent(s) have only failed explanations" in page.locator("#failed-note").inner_text()

    header = page.locator('th[data-col="detection auc"]')
    header.click()  # scores sort best first; latents without the score (the failed one) go last either way
    best_first = sorted(DETECTION_AUC, key=DETECTION_AUC.get, reverse=True)
    assert _latents_shown(page) == best_first + [FAILED]
    assert "sorted-desc" in header.get_attribute("class")
    header.click()
    assert _latents_shown(page) == best_first[::-1] + [FAILED]
    cells = page.locator("#latents tbody tr td:nth-child(1)").all_inner_texts()
    assert cells[0] == str(best_first[-1])

    page.locator("#search").fill("LORD")
    assert _latents_shown(page) == [7] and "1 of 5 rows" in page.locator("#count").inner_text()
    page.locator("#search").fill('"<b>"')  # text with HTML metacharacters is searched and shown as text
    assert _latents_shown(page) == [3]
    assert page.locator("#latents tbody tr td.expl").inner_text() == EXPLANATION[3]
    page.locator("#search").fill("")
    assert len(_latents_shown(page)) == 5
    assert "failed" in page.locator(f'#latents tr[data-latent="{FAILED}"] td.expl').inner_text()


def test_latent_page_shows_scores_and_shaded_examples(reports, page):
    page.goto(reports[SAE].index.as_uri())
    page.locator('#latents a', has_text="3").first.click()
    page.wait_for_load_state()
    assert page.url.endswith("/latents/3.html")
    assert page.locator(".explanation").inner_text() == EXPLANATION[3]
    detection = page.locator('tr[data-scorer="detection"]')
    assert detection.locator(".own-auc").inner_text() == "0.910 [0.710, 1.000]"
    assert "0.610" in detection.inner_text()  # the shuffled control beside it
    assert page.locator(".quantile").count() == 4  # quantiles 9..6
    active = page.locator(".quantile .tok.active")
    assert active.count() >= 8
    colours = active.evaluate_all("spans => spans.map(s => getComputedStyle(s).backgroundColor)")
    assert all(c.startswith(("rgba(240, 140, 0,", "rgb(240, 140, 0)")) for c in colours), colours
    alphas = sorted({float(c.rstrip(")").split(",")[-1]) if c.startswith("rgba") else 1.0 for c in colours})
    assert len(alphas) > 2 and alphas[-1] == 1.0  # stronger activations are darker; the maximum is opaque
    silent = page.locator(".quantile .tok:not(.active)").first
    assert silent.evaluate("s => getComputedStyle(s).backgroundColor") == "rgba(0, 0, 0, 0)"
    assert page.locator('.negatives[data-set="random"] .example').count() == 3
    assert page.locator(".verdict.right").count() >= 1 and page.locator(".verdict.wrong").count() >= 1
    assert page.locator("#histogram rect").count() == 24
    assert page.locator("#promoted").inner_text().split() == ["<heaven>", "earth"]
    assert "hungarian" in page.locator("#matches").inner_text()
    chosen = page.locator("#draws tr.chosen")  # best-of-k: every draw, the chosen one marked
    assert page.locator("#draws tbody tr").count() == 2 and chosen.locator("td").nth(1).inner_text() == EXPLANATION[3]
    assert chosen.locator("td").nth(3).inner_text() == "0.850"
    for held in ("select", "select_random"):  # held-out windows apart from the judged negatives
        assert page.locator(f'.negatives[data-set="{held}"] .example').count() == 2


def test_bad_input_is_stated_on_the_page(reports, page):
    page.goto((reports[SAE].folder / "latents" / f"{FAILED}.html").as_uri())
    assert "Explanation failed: unparseable answer" in page.locator(".failed").first.inner_text()
    assert "<script>alert(1)</script>" in page.locator("pre").inner_text()  # shown as text, never run
    page.goto((reports[SAE].folder / "latents" / "7.html").as_uri())
    assert page.locator("#promoted").inner_text() == "not computed"
    page.goto(reports[OTHER].index.as_uri())
    assert "No explanations yet for this SAE" in page.locator("#empty").inner_text()
    assert "32 skipped" in page.locator("#counts").inner_text()
