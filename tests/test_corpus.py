"""Corpus building: rows, BOS policy, budget, seeded shuffling, local formats and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from transformers import AutoTokenizer

from autointerp_dagster.core.config import CorpusSpec
from autointerp_dagster.core.corpus import CorpusError, build_corpus, iter_token_batches, read_tokens


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


def test_rows_start_with_bos_and_respect_budget(tokenizer, tmp_path):
    info = build_corpus(CorpusSpec(ctx_len=16, token_budget=16 * 10 + 5), tokenizer, tmp_path)
    tokens = read_tokens(info)
    assert tokens.shape == (10, 16) and info.n_tokens == 160 and info.first_position == 1
    assert (tokens[:, 0] == tokenizer.bos_token_id).all()
    assert (tokens[:, 1:] != tokenizer.bos_token_id).all()
    assert info.encoded_tokens == 150
    batches = list(iter_token_batches(info, 4))
    assert [len(rows) for rows, _ in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([t for _, t in batches]), tokens)


def test_same_spec_is_stored_once_and_seed_changes_order(tokenizer, tmp_path):
    a = build_corpus(CorpusSpec(ctx_len=16, token_budget=64), tokenizer, tmp_path)
    again = build_corpus(CorpusSpec(ctx_len=16, token_budget=64), tokenizer, tmp_path)
    other = build_corpus(CorpusSpec(ctx_len=16, token_budget=64, seed=5), tokenizer, tmp_path)
    assert a == again and a.corpus_id != other.corpus_id
    assert not np.array_equal(read_tokens(a), read_tokens(other))


def test_bos_none_keeps_raw_text(tokenizer, tmp_path):
    info = build_corpus(CorpusSpec(ctx_len=16, token_budget=64, bos="none"), tokenizer, tmp_path)
    assert info.first_position == 0 and (read_tokens(info) != tokenizer.bos_token_id).all()


def test_local_formats(tokenizer, tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text("first document about rivers\n\nsecond document about seas")
    (folder / "b.jsonl").write_text("\n".join(json.dumps({"body": f"record {i} of the sea"}) for i in range(20)))
    pq.write_table(pa.table({"body": [f"parquet line {i} of water" for i in range(20)]}), folder / "c.parquet")
    (folder / "a.txt").rename(folder / "skip.md")  # other suffixes are ignored
    info = build_corpus(CorpusSpec(source=str(folder), text_column="body", ctx_len=8, token_budget=10_000),
                        tokenizer, tmp_path / "out")
    text = tokenizer.decode(read_tokens(info).ravel().tolist())
    assert "record" in text and "parquet" in text and "rivers" not in text
    assert info.n_documents == 40  # the budget exceeds the text: every document was read
    assert info.n_rows == info.n_tokens // 8 < 10_000 // 8


def test_errors_are_clear(tokenizer, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("   \n\n  ")
    with pytest.raises(CorpusError, match="fewer than one row"):
        build_corpus(CorpusSpec(source=str(empty), ctx_len=16), tokenizer, tmp_path / "o1")
    with pytest.raises(CorpusError, match="does not exist"):
        build_corpus(CorpusSpec(source=str(tmp_path / "nope")), tokenizer, tmp_path / "o2")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"content": "x"}))
    with pytest.raises(CorpusError, match="no field 'text'"):
        build_corpus(CorpusSpec(source=str(bad)), tokenizer, tmp_path / "o3")
