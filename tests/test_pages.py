"""Latent pages and exports on a real DuckDB file: what the index and a latent's page hold, the files written,
the Parquet dataset loaded back with `datasets` (offline), Neuronpedia's layout, the 127.0.0.1 server, the CLI."""

from __future__ import annotations

import json
import re
import shutil
import threading
import urllib.request

import pytest

from autointerp_dagster.core.config import Price
from autointerp_dagster.core.pages import (
    export_neuronpedia,
    export_parquet,
    gather_index,
    iter_latent_pages,
    known_saes,
    pages_folder,
    pages_server,
    write_pages,
)
from autointerp_dagster.core.pages.render import embed_json
from autointerp_dagster.core.store import ResultsStore

from .pages_data import DETECTION_AUC, EXPLANATION, FAILED, LATENTS, OTHER, SAE, build_store


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pages-home")
    build_store(folder)
    return folder


@pytest.fixture
def store(home):
    return ResultsStore(home / "autointerp.duckdb")


def test_index_lists_every_explanation_with_scores_beside_controls(store):
    index = gather_index(store, SAE)
    assert index.latents == LATENTS and index.explained == 4 and index.failed == 1
    assert index.sampled == 5 and index.skipped == 27 and index.n_latents == 32
    rows = {r["latent"]: r for r in index.rows}
    for latent, auc in DETECTION_AUC.items():
        own, shuffled = rows[latent]["scores"]["detection auc"]
        assert own == pytest.approx(auc) and shuffled == pytest.approx(auc - 0.3)
        assert rows[latent]["explanation"] == EXPLANATION[latent]
        assert rows[latent]["judge"] == "local:tiny-judge per_example-1"
    assert rows[FAILED]["status"] == "failed" and "unparseable" in rows[FAILED]["error"]
    assert rows[FAILED]["scores"]["detection auc"] == [None, None]
    assert rows[7]["frequency"] == pytest.approx(12 / 4096, rel=1e-5)

    empty = gather_index(store, OTHER)
    assert empty.rows == [] and empty.latents == [] and empty.skipped == 32
    assert known_saes(store) == [SAE, OTHER]


def test_latent_page_data(store):
    pages = {p.latent: p.data for p in iter_latent_pages(store, SAE, LATENTS, chunk=2)}
    assert sorted(pages) == LATENTS
    page = pages[3]
    (explanation,) = page["explanations"]
    own = {s["scorer"]: s for s in explanation["scores"] if s["own"]}
    assert own["detection"]["auc"] == pytest.approx(0.91) and own["detection"]["auc_ci_low"] == pytest.approx(0.71)
    assert {s["control_latent"] for s in explanation["scores"] if not s["own"]} == {7}
    assert [x["set"] for x in page["examples"]].count("test") == 4 and len(page["examples"]) == 13
    assert len(page["verdicts"]) == 6
    assert {v["example_set"] for v in page["verdicts"]} == {"test", "random", "hard_negative"}
    # The histogram counts every non-zero activation of the latent in the cache (5 + latent records).
    assert page["histogram"]["source"].startswith("activation cache") and sum(page["histogram"]["counts"]) == 8
    assert page["histogram"]["max"] == pytest.approx(7.0, abs=0.01)
    assert page["digest"]["promoted"] == [[" <heaven>", 4.5], [" earth", 3.25]]
    assert page["matches"] == [{"sae": OTHER, "latent": 5, "method": "hungarian", "decoder_cosine": 0.81,
                                "activation_correlation": 0.6, "explanation_similarity": 0.4, "has_page": False}]
    assert pages[11]["matches"][0]["sae"] == OTHER and pages[11]["matches"][0]["latent"] == 7  # the pair's b side
    failed = pages[FAILED]["explanations"][0]
    assert failed["status"] == "failed" and failed["scores"] == [] and "<script>" in failed["raw_answer"]
    assert pages[7]["digest"] == {"promoted": [], "top_activating": []}


def test_page_files_are_self_contained_and_escaped(store, home):
    report = write_pages(store, SAE, home / "pages")
    assert report.folder == pages_folder(home / "pages", SAE) and report.folder.name == "tiny__layers.1__run-a"
    assert report.latent_pages == 5 and sorted(p.name for p in (report.folder / "latents").glob("*.html")) == sorted(
        f"{n}.html" for n in LATENTS)
    for path in [report.index, *(report.folder / "latents").glob("*.html")]:
        text = path.read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), f"{path} loads something from the network"
        assert "<script>alert" not in text and "</b>" not in text  # embedded text never closes or opens elements
    data = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>',
                                (report.folder / "latents" / f"{FAILED}.html").read_text(), re.S).group(1))
    assert data["explanations"][0]["raw_answer"] == "I think <script>alert(1)</script>"
    assert embed_json("</script>") == '"\\u003c/script\\u003e"'
    assert (home / "pages" / "index.html").read_text().count("tiny/layers.1/run-a") == 1

    empty = write_pages(store, OTHER, home / "pages")
    assert empty.latent_pages == 0 and empty.index.is_file()
    assert '"rows":[]' in empty.index.read_text()


def test_parquet_dataset_loads_with_datasets_offline(store, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    out = export_parquet(store, [SAE, OTHER], tmp_path / "dataset")
    card = (out / "README.md").read_text()
    assert card.startswith("---\nconfigs:") and re.search(r"data_files: data/explanations-[0-9a-f]{12}\.parquet", card)
    explanations = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "hf"))
    assert len(explanations) == 5 and set(explanations["sae"]) == {SAE}
    by_latent = {r["latent"]: r for r in explanations}
    assert by_latent[3]["detection_auc"] == pytest.approx(0.91)
    assert by_latent[3]["detection_auc_shuffled"] == pytest.approx(0.61)
    assert by_latent[FAILED]["status"] == "failed" and by_latent[FAILED]["detection_auc"] is None
    scores = datasets.load_dataset(str(out), "scores", split="train", cache_dir=str(tmp_path / "hf"))
    assert len(scores) == 4 * 3 * 2 and set(scores["control"]) == {"none", "shuffled"}
    # A re-export of other rows to the same folder loads the new rows, not the cached old ones.
    changed = ResultsStore(shutil.copy(store.db_path, tmp_path / "changed.duckdb"))
    with changed.connect() as con:
        con.execute("DELETE FROM explanations WHERE latent = 7")
    export_parquet(changed, [SAE], out)
    assert len(datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "hf"))) == 4
    with pytest.raises(ValueError, match="no explanation recorded for tiny/layers.2/run-a"):
        export_parquet(store, [OTHER], tmp_path / "empty")


def test_neuronpedia_layout(store, tmp_path):
    folder = export_neuronpedia(store, SAE, tmp_path / "np")
    explanations = json.loads((folder / "explanations.json").read_text())
    assert sorted(int(e["index"]) for e in explanations) == sorted(DETECTION_AUC)  # failed ones are not exported
    first = next(e for e in explanations if e["index"] == "3")
    assert first["modelId"] == "tiny" and first["layer"] == "layers.1-run-a"
    assert first["description"] == EXPLANATION[3] and first["explanationModelName"] == "local:tiny-judge"
    assert {"explanationScoreTypeName": "detection_auc", "explanationScoreModelName": "local:tiny-judge per_example-1",
            "value": 0.91} in first["scores"]
    assert json.loads(first["notes"])["shuffled_control"]["detection_auc_shuffled"] == pytest.approx(0.61)
    activations = json.loads((folder / "activations.json").read_text())
    assert len(activations) == 5 * 8  # the activating windows (train and test) of every explained latent
    a = activations[0]
    assert a["values"][a["maxValueTokenIndex"]] == a["maxValue"] > 0 and len(a["tokens"]) == len(a["values"])


def test_server_on_localhost(store, home):
    write_pages(store, SAE, home / "pages")
    server = pages_server(home / "pages", port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address
        assert host == "127.0.0.1"
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/tiny__layers.1__run-a/latents/3.html").read().decode()
        assert "latent.js" in page and "numbers" not in page.split("<body>")[0]
    finally:
        server.shutdown()
        server.server_close()


def test_cli_pages_and_export(home, monkeypatch, capsys):
    from autointerp_dagster.cli import main

    monkeypatch.setenv("AUTOINTERP_HOME", str(home))
    monkeypatch.delenv("AUTOINTERP_CONFIG", raising=False)
    assert main(["pages"]) == 0
    out = capsys.readouterr().out
    assert f"{SAE}: 5 latent pages (4 explained, 1 failed)" in out and f"{OTHER}: 0 latent pages" in out
    assert (home / "pages" / "tiny__layers.2__run-a" / "index.html").is_file()
    assert main(["export", "--format", "neuronpedia", "--sae", SAE]) == 0
    assert (home / "exports" / "neuronpedia" / "tiny__layers.1__run-a" / "explanations.json").is_file()


def test_pages_show_what_the_llm_cost_for_the_coder_and_each_latent(store, home):
    latent = LATENTS[0]
    with store.connect() as con:  # one latent explained and judged through a priced API model
        con.execute("UPDATE explanations SET backend = 'openai', model = 'paid-model', prompt_tokens = 1000, "
                    "completion_tokens = 100 WHERE sae = ? AND latent = ?", [SAE, latent])
        con.execute("UPDATE scores SET judge = 'openai:paid-model', prompt_tokens = 2000, completion_tokens = 10 "
                    "WHERE sae = ? AND latent = ?", [SAE, latent])
        judged = con.execute("SELECT count(*) FROM scores WHERE sae = ? AND latent = ?", [SAE, latent]).fetchone()[0]
    price = {"paid-model": Price(model="paid-model", prompt=2.0, completion=10.0)}  # dollars per 1M tokens
    dollars = (1000 * 2.0 + 100 * 10.0 + judged * (2000 * 2.0 + 10 * 10.0)) / 1e6

    def data(path):
        return json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>',
                                    path.read_text(), re.S).group(1))

    report = write_pages(store, SAE, home / "pages", price)
    page = data(report.folder / "latents" / f"{latent}.html")
    assert page["cost"].startswith(f"LLM cost of this latent: ${dollars:,.4f}; openai:paid-model "
                                   f"{1000 + judged * 2000:,} prompt")
    assert data(report.index)["cost"].startswith(f"cost: ${dollars:,.2f} for ")
    unpriced = write_pages(store, SAE, home / "pages")  # no price: unknown, never a partial sum
    assert "unknown (no price for openai:paid-model" in data(unpriced.folder / "latents" / f"{latent}.html")["cost"]
    assert data(unpriced.index)["cost"].startswith("cost: unknown")


def test_latent_pages_show_intruder_detection_beside_its_control(store, home):
    from autointerp_dagster.core.store import writes

    latent = LATENTS[1]
    rows = [{"sae": SAE, "latent": latent, "scorer": "intruder", "mode": "intruder", "judge": "local:tiny-judge",
             "scorer_config": "intruder-5w-abc", "control": control, "status": "ok", "accuracy": accuracy,
             "ci_low": accuracy - 0.2, "ci_high": min(1.0, accuracy + 0.2), "n_examples": 6, "n_failed": 0}
            for control, accuracy in (("none", 0.8333), ("mixed", 0.1667))]
    writes.write_intruder_scores(store, SAE, latent, latent + 1, "local:tiny-judge", "intruder-5w-abc", rows)
    report = write_pages(store, SAE, home / "pages")
    page = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>',
                                (report.folder / "latents" / f"{latent}.html").read_text(), re.S).group(1))
    assert [(r["control"], r["accuracy"]) for r in page["intruder"]] == [("none", 0.8333), ("mixed", 0.1667)]
    assert page["intruder"][0]["judge"] == "local:tiny-judge intruder-5w-abc"
    # An intruder score has no explanation: the explanation cards and the index rows are unchanged by it.
    assert all(s["scorer"] != "intruder" for e in page["explanations"] for s in e["scores"])


def test_latent_pages_list_every_best_of_k_draw_with_its_held_out_aucs(store, home, tmp_path, monkeypatch):
    from autointerp_dagster.core.store import writes

    latent = LATENTS[0]
    draws = [{"sae": SAE, "latent": latent, "explainer": "default-b4", "backend": "openai", "model": "m", "draw": k,
              "status": status, "explanation": text, "error": None if text else "unparseable", "choice_auc": auc,
              "heldout_auc": auc, "chosen": k == 1, "prompt_tokens": 100, "completion_tokens": 9}
             for k, (status, text, auc) in enumerate([("ok", "numbers", 0.61), ("ok", "the word LORD", 0.93),
                                                      ("failed", None, None)])]
    writes.write_explanation_draws(store, SAE, latent, latent + 1, "default-b4", "openai", "m", draws)
    report = write_pages(store, SAE, home / "pages")
    html = (report.folder / "latents" / f"{latent}.html").read_text()
    page = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>', html, re.S).group(1))
    assert [(d["draw"], d["explanation"], d["heldout_auc"], d["chosen"]) for d in page["draws"]] == [
        (0, "numbers", 0.61, False), (1, "the word LORD", 0.93, True), (2, None, None, False)]
    assert page["draws"][1]["model"] == "openai:m" and page["draws"][2]["error"] == "unparseable"
    other = json.loads(re.search(r'<script id="data" type="application/json">(.*?)</script>',
                                 (report.folder / "latents" / f"{LATENTS[1]}.html").read_text(), re.S).group(1))
    assert other["draws"] == []
    # The Parquet export carries every draw as its own configuration.
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    exported = export_parquet(store, [SAE], tmp_path / "dataset")
    assert "config_name: draws" in (exported / "README.md").read_text()
    rows = datasets.load_dataset(str(exported), "draws", split="train", cache_dir=str(tmp_path / "hf"))
    assert [(r["draw"], r["chosen"], r["heldout_auc"]) for r in rows] == [(0, False, 0.61), (1, True, 0.93),
                                                                          (2, False, None)]
