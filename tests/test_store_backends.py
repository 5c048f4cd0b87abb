"""The two results-store backends keep one contract: the same writes leave the same rows. The DuckDB file is
written by one process at a time; the Parquet folder by any number at once (core/store/parquet.py)."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from autointerp_dagster.core.llm.records import CallRecord, LLMRecords
from autointerp_dagster.core.store import ParquetStore, ResultsStore, writes
from autointerp_dagster.core.store.tables import EXPLANATIONS, SCORES, TABLES

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def _explanation(latent: int, text: str, explainer: str = "x") -> dict:
    row = dict.fromkeys(EXPLANATIONS.names)
    return {**row, "sae": "m/h", "latent": latent, "explainer": explainer, "backend": "openai", "model": "big",
            "explanation": text, "explanation_id": f"{explainer}-{latent}-{text}", "status": "ok",
            "prompt_tokens": 10, "completion_tokens": 2, "created_at": NOW, "call_ids": []}


def _score(latent: int, scorer: str, explanation_id: str, auc: float) -> dict:
    row = dict.fromkeys(SCORES.names)
    return {**row, "sae": "m/h", "latent": latent, "scorer": scorer, "explanation_id": explanation_id,
            "explainer": "x", "explainer_model": "openai:big", "judge": "openai:big", "scorer_config": "c",
            "control": "none", "status": "ok", "auc": auc, "mode": scorer, "call_ids": [], "created_at": NOW}


def _owner(*scorers: str) -> writes.ScoreOwner:
    return writes.ScoreOwner(scorers=scorers, judges=("openai:big",), scorer_configs=("c",),
                             explainers=(("x", "openai:big"),))


def _story(store) -> dict[str, list[dict]]:
    """Writes, re-writes, overlapping owners and an orphaned explanation; returns what each table holds."""
    explained = [_explanation(i, f"about {i}") for i in range(4)]
    writes.write_explanations(store, "m/h", 0, 4, "x", "openai", "big", explained)
    scores = [_score(i, s, e["explanation_id"], 0.5 + i / 10) for i, e in enumerate(explained)
              for s in ("detection", "fuzzing")]
    writes.write_scores(store, "m/h", 0, 4, _owner("detection", "fuzzing"), scores, [])
    writes.write_scores(store, "m/h", 0, 4, _owner("detection", "fuzzing"), scores, [])  # a re-run replaces
    # A later run owns detection alone: its rows replace detection's in the file both scorers were written to.
    rescored = [_score(i, "detection", e["explanation_id"], 0.9) for i, e in enumerate(explained)]
    writes.write_scores(store, "m/h", 0, 4, _owner("detection"), rescored, [])
    # Latent 2's explanation is replaced: its scores go with it.
    explained[2] = _explanation(2, "about two, again")
    deleted = writes.write_explanations(store, "m/h", 0, 4, "x", "openai", "big", explained)
    assert deleted == 2
    writes.write_explanations(store, "m/h", 4, 8, "x", "openai", "big", [_explanation(5, "five")])
    similarity = pa.Table.from_pylist([{"sae_a": "a", "sae_b": "m/h", "method": "decoder_cosine", "control": "none",
                                        "mean": 0.4}, {"sae_a": "a", "sae_b": "b", "method": "decoder_cosine",
                                                       "control": "none", "mean": 0.2}],
                                      schema=TABLES["sae_similarity"])
    writes.write_similarities(store, "a", None, similarity)
    writes.write_similarities(store, "m/h", None, similarity.slice(0, 1).set_column(
        similarity.schema.get_field_index("mean"), "mean", pa.array([0.45])))
    assert store.duplicate_keys("scores", ("latent", "scorer", "control"), "sae = ?", ["m/h"]) == 0
    held = {}
    for table, order in (("explanations", "latent, explainer"), ("scores", "latent, scorer"),
                         ("sae_similarity", "sae_a, sae_b")):
        held[table] = store.query(f"SELECT * FROM {table} ORDER BY {order}").to_pylist()
    return held


@pytest.mark.parametrize("backend", ["duckdb", "parquet"])
def test_each_backend_keeps_the_contract(backend, tmp_path):
    store = ResultsStore(tmp_path / "r.duckdb") if backend == "duckdb" else ParquetStore(tmp_path / "results")
    held = _story(store)
    assert [(r["latent"], r["explanation"]) for r in held["explanations"]] == [
        (0, "about 0"), (1, "about 1"), (2, "about two, again"), (3, "about 3"), (5, "five")]
    assert [(r["latent"], r["scorer"], r["auc"]) for r in held["scores"]] == [
        (0, "detection", 0.9), (0, "fuzzing", 0.5), (1, "detection", 0.9), (1, "fuzzing", 0.6),
        (3, "detection", 0.9), (3, "fuzzing", 0.8)]
    assert [(r["sae_a"], r["sae_b"], r["mean"]) for r in held["sae_similarity"]] == [("a", "b", 0.2),
                                                                                      ("a", "m/h", 0.45)]


def test_both_backends_hold_the_same_rows(tmp_path):
    assert _story(ResultsStore(tmp_path / "r.duckdb")) == _story(ParquetStore(tmp_path / "results"))


def _call(call_id: str) -> CallRecord:
    return CallRecord.now(call_id=call_id, backend="openai", model="big", purpose="test", prompt_hash="h",
                          tokens_in=1, tokens_out=1, latency_s=0.1, attempts=1, status="ok", error=None)


def _writer(root: str, worker: int) -> None:
    records = LLMRecords(ParquetStore(root))
    for batch in range(5):
        keys = [f"k{worker}-{batch}-{i}" for i in range(20)] + ["shared"]
        records.write([(k, "big", {"text": k}) for k in keys], [_call(f"c{worker}-{batch}-{i}") for i in range(20)])


def test_parquet_llm_tables_take_many_writers_at_once_and_compact(tmp_path):
    root = tmp_path / "results"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(str(root), w)) for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0] * 4
    store = ParquetStore(root)
    records = LLMRecords(store)
    wanted = [f"k{w}-{b}-{i}" for w in range(4) for b in range(5) for i in range(20)] + ["shared"]
    assert len(records.lookup(wanted)) == 401  # "shared" was written by all four: one row
    assert store.query("SELECT count(*) AS n FROM llm_calls").to_pylist() == [{"n": 400}]
    assert store.compact() == {"llm_responses": 20, "llm_calls": 20}
    assert len(records.lookup(wanted)) == 401 and len(list((root / "llm_responses").glob("*.parquet"))) == 1


def test_the_pipeline_on_both_backends_finds_the_same_rows(tmp_path, tiny_model_dir):
    """`autointerp run` on the tiny model and the scripted judge, once per backend: every table the same rows."""
    from tests.test_chaos import KEYS, VALUES, complete_run, judge_server, make_project

    found = {}
    for backend in ("duckdb", "parquet"):
        env = {**make_project(tmp_path / backend, tiny_model_dir), "AUTOINTERP_STORE_BACKEND": backend,
               "AUTOINTERP_LLM_TIMEOUT_S": "120"}  # no answer timed out on a busy machine: the rows compare
        server = judge_server()
        try:
            complete_run(env, server)
        finally:
            server.stop()
        home = tmp_path / backend / "home"
        store = ParquetStore(home / "results") if backend == "parquet" else ResultsStore(home / "autointerp.duckdb")
        assert (home / "results").is_dir() == (backend == "parquet")
        found[backend] = {table: sorted(tuple(str(r[c]) for c in KEYS[table] + VALUES.get(table, ()))
                                        for r in store.query(f"SELECT * FROM {table}").to_pylist())
                          for table in KEYS}
    for table in KEYS:
        assert found["parquet"][table], f"no {table} rows"
        assert found["parquet"][table] == found["duckdb"][table], table


def test_compact_command_merges_the_parquet_llm_files(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = tmp_path / "results"
    for worker in range(2):
        _writer(str(root), worker)
    env = {"AUTOINTERP_HOME": str(tmp_path / "home"), "AUTOINTERP_STORE_BACKEND": "parquet",
           "AUTOINTERP_STORE_ROOT": str(root), "PATH": "/usr/bin:/bin"}
    autointerp = Path(sys.executable).with_name("autointerp")
    done = subprocess.run([str(autointerp), "compact"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "llm_responses: 10 files merged into one" in done.stdout
    assert len(LLMRecords(ParquetStore(root)).lookup([f"k1-4-{i}" for i in range(20)] + ["shared"])) == 21


@pytest.fixture
def s3_bucket(monkeypatch):
    """A real S3 API on 127.0.0.1 (moto's server), an empty bucket, and the AWS_* variables s3fs reads."""
    pytest.importorskip("s3fs", reason="s3fs is a dev dependency (make test installs it)")
    moto_server = pytest.importorskip("moto.server", reason="moto is a dev dependency (make test installs it)")
    import boto3

    ThreadedMotoServer = moto_server.ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="results")
    yield "s3://results/autointerp"
    server.stop()


def test_parquet_store_on_an_object_store_keeps_the_contract(s3_bucket, tmp_path):
    store = ParquetStore(s3_bucket, folder=tmp_path)
    assert _story(store) == _story(ResultsStore(tmp_path / "r.duckdb"))
    assert store.fs.glob("results/autointerp/scores/*.parquet")  # the rows are objects in the bucket
    records = LLMRecords(store)
    records.write([("key", "big", {"text": "an answer"})], [_call("call")])
    records.write([("key", "big", {"text": "a later answer"})], [_call("call2")])
    assert records.lookup(["key", "absent"]) == {"key": {"text": "an answer"}}
    assert store.compact() == {"llm_responses": 2, "llm_calls": 2}
    assert records.lookup(["key"]) == {"key": {"text": "an answer"}}
