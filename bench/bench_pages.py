"""Latent pages at scale: a report for an SAE with N explained latents (default 10,000), with synthetic rows shaped
like a real run's (20 example windows of 32 tokens, three scorers beside their controls), then the index in
headless Chromium: load, sort by a score, search.

    python bench/bench_pages.py [N]

Prints name=value lines last."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from playwright.sync_api import sync_playwright

from autointerp_dagster.core.pages import write_pages
from autointerp_dagster.core.store import TABLES, ResultsStore

SAE = "bench/layers.0/wide"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WORDS = [" the", " of", " and", " LORD", " unto", " said", " <", " &", " king", " house", ",", "."]


def _table(name: str, columns: dict) -> pa.Table:
    schema = TABLES[name]
    n = len(next(iter(columns.values())))
    return pa.table({k: columns.get(k, [None] * n) for k in schema.names}).cast(schema)


def fill(store: ResultsStore, n: int) -> None:
    rng = np.random.default_rng(0)
    latents = np.arange(n)
    where = f"sae = '{SAE}'"
    store.replace_rows("latent_stats", _table("latent_stats", {
        "sae": [SAE] * n, "latent": latents, "n_activations": rng.integers(20, 5000, n),
        "frequency": rng.random(n) / 100, "max_activation": rng.random(n) * 100, "mean_activation": rng.random(n)}),
        where)
    explanations = {"sae": [SAE] * n, "latent": latents, "explainer": ["default-x"] * n,
                    "explanation_id": [f"e{i}" for i in latents], "status": ["ok"] * n,
                    "explanation": [f"words like {WORDS[i % 12]} in context {i}" for i in latents],
                    "backend": ["local"] * n, "model": ["m"] * n}
    store.replace_rows("explanations", _table("explanations", explanations), where)
    rows = [(i, s, c) for i in latents for s in ("detection", "fuzzing", "embedding") for c in ("none", "shuffled")]
    m = len(rows)
    store.replace_rows("scores", _table("scores", {
        "sae": [SAE] * m, "latent": [r[0] for r in rows], "scorer": [r[1] for r in rows],
        "control": [r[2] for r in rows], "explanation_id": [f"e{r[0]}" for r in rows], "judge": ["j"] * m,
        "scorer_config": ["c"] * m, "status": ["ok"] * m, "balanced_accuracy": rng.random(m), "auc": rng.random(m),
        "ci_low": np.zeros(m), "ci_high": np.ones(m), "auc_ci_low": np.zeros(m), "auc_ci_high": np.ones(m),
        "n_examples": [10] * m, "n_failed": [0] * m}), where)
    k = n * 20
    acts = [[0.0] * 24 + [float(a)] + [0.0] * 7 for a in rng.random(k) * 50]
    store.replace_rows("examples", _table("examples", {
        "sae": [SAE] * k, "latent": np.repeat(latents, 20), "set": (["train"] * 10 + ["test"] * 10) * n,
        "idx": list(range(20)) * n, "row": rng.integers(0, 512, k), "start": [0] * k,
        "quantile": list(np.repeat(np.arange(9, -1, -1), 2)) * n,
        "tokens": [[WORDS[j % 12] for j in range(i, i + 32)] for i in range(k)], "activations": acts,
        "normalized": [[0] * 24 + [10] + [0] * 7] * k}), where)


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultsStore(Path(tmp) / "autointerp.duckdb")
        started = time.perf_counter()
        fill(store, n)
        filled = time.perf_counter() - started
        started = time.perf_counter()
        report = write_pages(store, SAE, Path(tmp) / "pages")
        build_s = time.perf_counter() - started
        size = sum(p.stat().st_size for p in report.folder.rglob("*")) / 1e6
        index_kb = report.index.stat().st_size / 1e3
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page()
            # Times measured inside the page (performance.now()), so Playwright's own round trips are not counted.
            page.goto(report.index.as_uri())
            page.locator("#latents tbody tr").first.wait_for()
            load_s = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd") / 1000
            sort_s = page.evaluate("""() => { const t = performance.now();
                document.querySelector('th[data-col="detection auc"]').click();
                return performance.now() - t; }""") / 1000
            search_s = page.evaluate("""() => { const t = performance.now(), box = document.getElementById('search');
                box.value = 'LORD'; box.dispatchEvent(new Event('input')); return performance.now() - t; }""") / 1000
            shown = page.locator("#count").inner_text()
            page.goto((report.folder / "latents" / f"{n // 2}.html").as_uri())
            page.locator(".tok.active").first.wait_for()
            latent_s = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd") / 1000
            browser.close()
    print(f"filled the store in {filled:.1f} s; search result: {shown}")
    print(f"latents={n}")
    print(f"report_build_s={build_s:.1f}")
    print(f"report_mb={size:.1f}")
    print(f"index_html_kb={index_kb:.0f}")
    print(f"index_load_s={load_s:.2f}")
    print(f"index_sort_s={sort_s:.2f}")
    print(f"index_search_s={search_s:.2f}")
    print(f"latent_page_load_s={latent_s:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
