"""Example sampling on a real cache of the tiny model: windows, activations, splits, negatives, storage."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from autointerp_dagster.core.cache import MANIFEST, ActivationCache
from autointerp_dagster.core.cache.reader import file_record
from autointerp_dagster.core.cache.writer import CacheTarget, cache_activations
from autointerp_dagster.core.coders import CoderSource, load_coder
from autointerp_dagster.core.config import SamplingConfig
from autointerp_dagster.core.corpus import build_corpus, read_tokens
from autointerp_dagster.core.models.embeddings import embed_texts
from autointerp_dagster.core.models.subject import load_subject_model
from autointerp_dagster.core.prompts.explainer import format_example_for_explainer
from autointerp_dagster.core.sampling import (
    ACTIVATING,
    HARD_NEGATIVE,
    NEIGHBOUR_NEGATIVE,
    RANDOM_NEGATIVE,
    Example,
    LeakageError,
    TokenDecoder,
    activating_windows,
    build_examples,
    examples_to_rows,
    negatives,
    order_for_explainer,
    rows_to_latent_examples,
    split_train_test,
    window_pool_embeddings,
)
from autointerp_dagster.core.sampling.build import EXPLAINER, SCORER, SELECTION, ExampleSets
from autointerp_dagster.core.sampling.neighbours import nearest_latents
from autointerp_dagster.core.store.tables import EXAMPLES

from .conftest import write_sparsify_sae

CONFIG = SamplingConfig(example_ctx_len=16, peak_index=12, min_activating=8, n_train=10, n_test=15, n_quantiles=5,
                        n_random_negatives=20, n_hard_negatives=10, hard_negative_queries=5, seed=3)
KEY = "tiny/layers.1"


@pytest.fixture(scope="module")
def setup(tiny_model_dir, tmp_path_factory):
    from autointerp_dagster.core.config import CorpusSpec

    root = tmp_path_factory.mktemp("sampling")
    model = load_subject_model(str(tiny_model_dir), root / "models")
    corpus = build_corpus(CorpusSpec(ctx_len=64, token_budget=64 * 60), model.tokenizer, root / "corpus")
    coder = load_coder(CoderSource(str(write_sparsify_sae(root / "sae" / "layers.1", 64, 48, 4, seed=5))),
                       base_model=model.body)
    cache_activations(model, corpus, [CacheTarget(KEY, coder, root / "cache")], n_ranges=3)
    cache = ActivationCache(root / "cache")
    tokens = read_tokens(corpus)
    decode = TokenDecoder(model.tokenizer)
    pool = window_pool_embeddings(corpus, tokens, decode, CONFIG.example_ctx_len)
    examples = build_examples(cache, tokens, decode, range(cache.n_latents), KEY, CONFIG, pool_embeddings=pool)
    table = cache.records(0, cache.n_latents)
    dense = np.zeros((corpus.n_rows, corpus.ctx_len, cache.n_latents), np.float32)
    dense[table["row"].to_numpy(), table["pos"].to_numpy(), table["latent"].to_numpy()] = table["activation"].to_numpy()
    return dict(model=model, corpus=corpus, cache=cache, tokens=tokens, decode=decode, pool=pool,
                examples=examples, dense=dense, root=root)


def ok_latents(setup):
    ok = [le for le in setup["examples"] if le.status == "ok"]
    assert len(ok) >= 10, "the tiny cache should give plenty of sampled latents"
    return ok


def naive_windows(row, pos, act, ctx_len, first_position, config):
    """Reference greedy, one peak at a time in plain Python."""
    width, chosen = config.example_ctx_len, []
    for i in sorted(range(len(row)), key=lambda i: (-act[i], row[i], pos[i])):
        start = min(max(int(pos[i]) - config.peak_index, first_position), ctx_len - width)
        if not any(r == row[i] and abs(start - s) < width for r, s, _ in chosen):
            chosen.append((int(row[i]), start, i))
    return chosen


def test_windows_match_greedy_and_place_the_peak(setup):
    corpus, cache, config = setup["corpus"], setup["cache"], CONFIG
    table = cache.records(0, cache.n_latents)
    placed = clamped = 0
    windows = {}
    for latent in range(cache.n_latents):
        part = table.filter(pc.equal(table["latent"], latent))
        row, pos, act = (part[c].to_numpy() for c in ("row", "pos", "activation"))
        pos = pos.astype(np.int64)
        win_row, win_start, peak = activating_windows(row, pos, act, corpus.ctx_len, corpus.first_position, config)
        assert list(zip(win_row.tolist(), win_start.tolist(), peak.tolist())) == naive_windows(
            row, pos, act, corpus.ctx_len, corpus.first_position, config)
        windows[latent] = set(zip(win_row.tolist(), win_start.tolist()))
        for _row, s, p in zip(win_row, win_start, peak):
            assert s >= corpus.first_position == 1 and s + config.example_ctx_len <= corpus.ctx_len  # never BOS
            if corpus.first_position <= pos[p] - config.peak_index <= corpus.ctx_len - config.example_ctx_len:
                assert pos[p] - s == config.peak_index
                placed += 1
            else:
                clamped += 1
    assert placed > clamped > 0  # peaks in the first 12 or last 3 positions of a row are shifted
    for le in ok_latents(setup):
        assert {(ex.row, ex.start) for ex in le.train + le.test} <= windows[le.latent]
        for ex in le.train + le.test + le.random_negatives + le.hard_negative_train + le.hard_negative_test:
            assert ex.start >= 1
            assert ex.tokens == tuple(setup["decode"].strings(setup["tokens"][ex.row, ex.start:ex.start + 16]))


def test_windows_never_overlap(setup):
    for le in ok_latents(setup):
        for group in (le.train + le.test, le.random_negatives):
            spans = sorted((ex.row, ex.start) for ex in group)
            for (r1, s1), (r2, s2) in zip(spans, spans[1:]):
                assert r1 != r2 or s2 - s1 >= CONFIG.example_ctx_len


def test_activations_equal_records_and_normalisation(setup):
    dense, ten = setup["dense"], 0
    for le in ok_latents(setup):
        latent_max = dense[:, :, le.latent].max()
        assert le.max_activation == pytest.approx(latent_max)
        for ex in le.train + le.test + le.random_negatives + le.hard_negative_train + le.hard_negative_test:
            values = dense[ex.row, ex.start:ex.start + CONFIG.example_ctx_len, le.latent]
            assert np.array_equal(np.asarray(ex.activations, np.float32), values)
            assert ex.normalized == tuple(np.ceil(10 * values.astype(np.float64) / latent_max).astype(int).tolist())
            # Rounded up: 0 exactly where silent, so a token where the latent fires never shows as 0.
            assert [v > 0 for v in ex.normalized] == [a > 0 for a in ex.activations]
            assert all(0 <= v <= 10 for v in ex.normalized)
        if le.n_activating_windows <= CONFIG.n_train + CONFIG.n_test:  # every window is used
            assert max(max(ex.normalized) for ex in le.train + le.test) == 10
            ten += 1
    assert ten > 0


class RecordsOnly:
    """The part of an ActivationCache that build_examples reads, holding hand-written records of latent 0."""

    def __init__(self, records: list[tuple[int, int, float]], n_rows: int, ctx_len: int):
        row, pos, activation = (list(c) for c in zip(*sorted(records)))
        self.table = pa.table({"latent": [0] * len(row), "row": row, "pos": pos,
                               "activation": pa.array(activation, pa.float32())})
        self.manifest = {"ctx_len": ctx_len, "first_position": 1}
        self.summary = type("Summary", (), {"n_rows": n_rows})()
        self.n_latents = 1

    def records(self, start: int, end: int) -> pa.Table:
        return self.table

    def latent_stats(self) -> pa.Table:
        return pa.table({"n_activations": [len(self.table)]})


def test_weak_activations_show_as_at_least_one(setup):
    # One strong window (peak 10) and three whose peaks are under 5% of it: rounding to nearest shows them as 0.
    records = [(0, 8, 10.0), (0, 9, 0.1), (1, 8, 0.4), (2, 8, 0.3), (3, 8, 0.2)]
    config = SamplingConfig(example_ctx_len=4, peak_index=2, min_activating=2, n_train=2, n_test=2, n_quantiles=2,
                            n_random_negatives=2, n_hard_negatives=0)
    [le] = build_examples(RecordsOnly(records, n_rows=6, ctx_len=16), setup["tokens"][:6, :16], setup["decode"],
                          [0], KEY, config)
    shown = le.train + le.test
    assert sorted(max(e.normalized) for e in shown) == [1, 1, 1, 10]
    assert all((v > 0) == (a > 0) for e in shown for v, a in zip(e.normalized, e.activations))
    weak = min(shown, key=lambda e: e.max_activation)
    assert format_example_for_explainer(weak).endswith(" : 1)")


def test_train_test_disjoint_and_quantile_balanced(setup):
    full = 0
    for le in ok_latents(setup):
        assert all(ex.kind == ACTIVATING for ex in le.train + le.test)
        train, test = {(e.row, e.start) for e in le.train}, {(e.row, e.start) for e in le.test}
        assert len(train) == len(le.train) and len(test) == len(le.test) and not train & test
        n = le.n_activating_windows
        if n >= CONFIG.n_train + CONFIG.n_test:
            full += 1
            assert np.bincount([e.quantile for e in le.train], minlength=5).tolist() == [2] * 5
            assert np.bincount([e.quantile for e in le.test], minlength=5).tolist() == [3] * 5
            by_bin = {q: [e.max_activation for e in le.train + le.test if e.quantile == q] for q in range(5)}
            assert max(by_bin[0]) <= min(by_bin[4])
        else:
            assert len(train) + len(test) == n and len(train) == round(n * 10 / 25)
    assert full > 0


def test_short_bins_are_filled_from_neighbours():
    config = SamplingConfig(n_train=4, n_test=4, n_quantiles=4, min_activating=1)
    quantile = np.array([0] * 5 + [1] * 1 + [2] * 6 + [3] * 6)  # bin 1 holds one window, its share is two
    train, test = split_train_test(quantile, config, np.random.default_rng(0))
    assert len(train) == len(test) == 4 and not set(train) & set(test)
    assert np.bincount(quantile[np.r_[train, test]], minlength=4).tolist() == [2, 1, 3, 2]
    small = np.repeat(np.arange(4), 3)  # 12 windows < 8 + 8: all used, split 6 : 6
    eight_each = config.model_copy(update={"n_train": 8, "n_test": 8})
    train, test = split_train_test(small, eight_each, np.random.default_rng(0))
    assert sorted(np.r_[train, test].tolist()) == list(range(12)) and len(train) == 6


def test_random_negatives_distinct_silent_and_seeded(setup):
    dense, sets = setup["dense"], {}
    for le in ok_latents(setup):
        assert len(le.random_negatives) == CONFIG.n_random_negatives
        spans = [(e.row, e.start) for e in le.random_negatives]
        assert len(set(spans)) == len(spans)
        for e in le.random_negatives:
            assert e.kind == RANDOM_NEGATIVE and not dense[e.row, e.start:e.start + 16, le.latent].any()
        sets[le.latent] = spans
    assert len({tuple(s) for s in sets.values()}) == len(sets), "every latent gets its own draw"
    some = list(sets)[:4]
    args = (setup["cache"], setup["tokens"], setup["decode"], some, KEY)
    again = build_examples(*args, CONFIG)
    assert [[(e.row, e.start) for e in le.random_negatives] for le in again] == [sets[latent] for latent in some]
    assert [le.train for le in again] == [le.train for le in setup["examples"] if le.latent in some]
    reseeded = build_examples(*args, CONFIG.model_copy(update={"seed": 4}))
    assert all([(e.row, e.start) for e in le.random_negatives] != sets[le.latent] for le in reseeded)
    assert all(le.hard_negative_train == le.hard_negative_test == [] for le in again), "no pool, no hard negatives"


def test_hard_negatives_silent_and_nearer_than_random(setup, monkeypatch):
    dense, texts = setup["dense"], []
    for le in ok_latents(setup):
        assert len(le.hard_negative_train) == len(le.hard_negative_test) == CONFIG.n_hard_negatives
        for e in le.hard_negative_train + le.hard_negative_test:
            assert e.kind == HARD_NEGATIVE and not dense[e.row, e.start:e.start + 16, le.latent].any()
    some = ok_latents(setup)[:12]  # embedded afresh in one batch: CPU time
    for le in some:
        top = sorted(le.train + le.test, key=lambda e: -e.max_activation)[: CONFIG.hard_negative_queries]
        texts += [e.text for e in top + le.hard_negative_test + le.random_negatives]
    vectors, at, hard_sim, random_sim = embed_texts(texts), 0, [], []
    for le in some:
        n_top, n_hard, n_random = CONFIG.hard_negative_queries, len(le.hard_negative_test), len(le.random_negatives)
        query = vectors[at:at + n_top].mean(axis=0)
        hard_sim.append(np.mean(vectors[at + n_top:at + n_top + n_hard] @ query))
        random_sim.append(np.mean(vectors[at + n_top + n_hard:at + n_top + n_hard + n_random] @ query))
        at += n_top + n_hard + n_random
    assert np.mean(hard_sim) > np.mean(random_sim) + 0.02
    # The pool is embedded once per corpus and read back from disk afterwards.
    corpus = setup["corpus"]
    assert (corpus.tokens_file.parent / "window_embeddings_L16.npy").exists()
    monkeypatch.setattr(negatives, "embed_texts", lambda texts: pytest.fail("pool re-embedded"))
    again = window_pool_embeddings(corpus, setup["tokens"], setup["decode"], 16)
    assert np.array_equal(again, setup["pool"]) and again.shape == (corpus.n_rows * (63 // 16), 384)


def test_explainer_and_scorer_hard_negatives_never_share_a_window(setup):
    for le in ok_latents(setup):
        shown = {(e.row, e.start) for e in le.hard_negative_train}
        judged = {(e.row, e.start) for e in le.hard_negative_test}
        assert len(shown) == len(judged) == CONFIG.n_hard_negatives and not shown & judged
        for e in le.hard_negative_train + le.hard_negative_test:  # clear of every random negative too
            assert all(r.row != e.row or abs(r.start - e.start) >= CONFIG.example_ctx_len
                       for r in le.random_negatives)


def window(row: int, start: int, kind: str = ACTIVATING) -> Example:
    return Example(("a",), (0.0,), (0,), kind, row, start)


def test_every_example_source_declares_who_sees_it():
    roles = {f.name: f.metadata.get("role") for f in dataclasses.fields(ExampleSets) if f.name != "latent"}
    assert roles == {"train": EXPLAINER, "test": SCORER, "random_negatives": SCORER,
                     "hard_negative_train": EXPLAINER, "hard_negative_test": SCORER,
                     "neighbour_train": EXPLAINER, "neighbour_test": SCORER,
                     "select": SELECTION, "select_random": SELECTION}


@pytest.mark.parametrize("shown, judged", [
    ("train", "test"), ("hard_negative_train", "hard_negative_test"), ("hard_negative_train", "random_negatives"),
    ("neighbour_train", "neighbour_test"), ("neighbour_train", "hard_negative_test"), ("train", "neighbour_test"),
    ("train", "select"), ("select", "test"), ("select_random", "random_negatives"),
])
def test_a_window_both_shown_and_judged_is_refused(shown, judged):
    sets = ExampleSets(7, **{shown: [window(3, 40), window(1, 8)], judged: [window(1, 8)]})
    pattern = rf"latent 7: window \(row 1, start 8\) is in ({shown}|{judged}) .* ({judged}|{shown})"
    with pytest.raises(LeakageError, match=pattern):
        sets.check_disjoint()
    rows = examples_to_rows(KEY, [sets])
    with pytest.raises(LeakageError):
        rows_to_latent_examples(rows)
    ExampleSets(7, test=[window(1, 8)], random_negatives=[window(1, 8)]).check_disjoint()  # both judged: no leak


def test_held_out_windows_leave_every_other_set_as_it_was_and_share_no_window(setup):
    """sampling.n_select adds windows for best-of-k's choice from their own random stream: the explainer's and the
    scorers' sets are those drawn without it, and no held-out window is in, or overlaps, any of them."""
    dense, some = setup["dense"], [le.latent for le in ok_latents(setup)[:8]]
    args = (setup["cache"], setup["tokens"], setup["decode"], some, KEY)
    held = build_examples(*args, CONFIG.model_copy(update={"n_select": 6}), pool_embeddings=setup["pool"])
    plain = {le.latent: le for le in setup["examples"]}
    for le in held:
        before = plain[le.latent]
        for name in ("train", "test", "random_negatives", "hard_negative_train", "hard_negative_test"):
            assert getattr(le, name) == getattr(before, name), name
        assert len(le.select) == len(le.select_random) > 0 and len(le.select) <= 6
        assert all(e.kind == ACTIVATING and e.max_activation > 0 for e in le.select)
        others = [e for name in ("train", "test", "random_negatives", "hard_negative_train", "hard_negative_test")
                  for e in getattr(le, name)]
        silent = le.random_negatives + le.hard_negative_train + le.hard_negative_test
        for e in le.select_random:  # clear of every other silent window, as hard negatives are of random ones
            assert e.kind == RANDOM_NEGATIVE and not dense[e.row, e.start:e.start + 16, le.latent].any()
            assert all(o.row != e.row or abs(o.start - e.start) >= CONFIG.example_ctx_len for o in silent)
        assert not {(e.row, e.start) for e in le.select} & {(e.row, e.start) for e in others}
    assert rows_to_latent_examples(examples_to_rows(KEY, held[:1]))[held[0].latent].select == held[0].select


def test_order_for_explainer():
    def ex(row, peak, quantile):
        return Example(("a", "b"), (0.0, peak), (0, 1), ACTIVATING, row, 0, quantile)

    given = [ex(0, 1.0, 0), ex(1, 2.0, 0), ex(2, 5.0, 1), ex(3, 6.0, 1), ex(4, 9.0, 2), ex(5, 8.0, 2)]
    rows = lambda examples: [e.row for e in examples]  # noqa: E731
    assert rows(order_for_explainer(given, "strongest_first", 0)) == [4, 5, 3, 2, 1, 0]
    assert rows(order_for_explainer(given, "quantile_spread", 0)) == [4, 3, 1, 5, 2, 0]
    shuffled = order_for_explainer(given, "random", 0)
    assert sorted(rows(shuffled)) == list(range(6)) and shuffled == order_for_explainer(given[::-1], "random", 0)
    assert any(rows(order_for_explainer(given, "random", latent)) != rows(shuffled) for latent in range(1, 4))
    with pytest.raises(ValueError, match="order"):
        order_for_explainer(given, "weakest_first", 0)


def test_dead_and_rare_latents_are_skipped(setup, tmp_path):
    cache = setup["cache"]
    table = cache.records(0, cache.n_latents)
    counts = np.bincount(table["latent"].to_numpy(), minlength=cache.n_latents)
    dead, rare = (int(i) for i in np.argsort(-counts)[:2])
    folder = tmp_path / "cache"
    shutil.copytree(cache.path, folder)
    for shard in folder.glob("latents-*.parquet"):
        part = pq.read_table(shard)
        latent = part["latent"].to_numpy()
        keep = (latent != dead) & ((latent != rare) | (np.cumsum(latent == rare) <= 3))
        pq.write_table(part.filter(pa.array(keep)), shard)
    manifest = json.loads((folder / MANIFEST).read_text())  # the edited shards are what this cache holds now
    manifest["files"] = {name: file_record(folder / name) for name in manifest["files"]}
    (folder / MANIFEST).write_text(json.dumps(manifest))
    examples = build_examples(ActivationCache(folder), setup["tokens"], setup["decode"], [rare, dead, 0], KEY, CONFIG)
    assert [le.latent for le in examples] == [rare, dead, 0]
    assert examples[1].status == "skipped" and examples[1].reason == "dead latent: never fires in the cache"
    n = examples[0].n_activating_windows
    assert examples[0].status == "skipped" and 1 <= n <= 3
    assert examples[0].reason == f"only {n} activating windows, fewer than min_activating=8"
    assert not (examples[0].train or examples[0].test or examples[0].random_negatives)


def test_rows_round_trip_through_arrow(setup):
    examples = setup["examples"][:6]
    rows = examples_to_rows(KEY, examples)
    assert {r["set"] for r in rows} == {"train", "test", "random", "hard_negative_train", "hard_negative"}
    stored = pa.Table.from_pylist(rows, schema=EXAMPLES).to_pylist()
    back = rows_to_latent_examples(stored)
    for le in examples:
        if le.status == "ok":
            sets = back[le.latent]
            assert dataclasses.astuple(sets) == dataclasses.astuple(ExampleSets(**{
                f.name: getattr(le, f.name) for f in dataclasses.fields(ExampleSets)}))
        else:
            assert le.latent not in back


def test_token_decoder_decodes_each_id_once(setup):
    tokenizer, calls = setup["model"].tokenizer, []

    class Counting:
        def batch_decode(self, sequences, **kwargs):
            calls.extend(s[0] for s in sequences)
            return tokenizer.batch_decode(sequences, **kwargs)

    decoder = TokenDecoder(Counting())
    ids = setup["tokens"][:5]
    first, second = decoder.strings(ids), decoder.strings(ids[::-1])
    assert len(calls) == len(set(calls)) == len(np.unique(ids))
    assert first.shape == ids.shape and second[0, 3] == first[-1, 3]
    assert first[0, 1] == tokenizer.decode([int(ids[0, 1])])


def test_a_range_sample_keeps_the_wanted_latents_and_gives_every_other_a_reason(setup):
    from autointerp_dagster.core.sampling import sample_latent_range

    cache = setup["cache"]
    counts = cache.latent_stats()["n_activations"].to_numpy()
    counts = counts.copy()
    counts[[0, 1]] = [0, 3]  # as if latent 0 were dead and latent 1 rare
    args = (cache, setup["tokens"], setup["decode"], KEY, 0, counts, CONFIG)
    two = sample_latent_range(*args, wanted=2)
    assert len(two.kept) == 2 and all(le.status == "ok" for le in two.kept)
    assert two == sample_latent_range(*args, wanted=2)  # seeded: the same latents every time
    rows = {r["latent"]: r for r in two.status_rows}
    assert rows[0]["reason"] == "dead latent: never fires in the cache"
    assert rows[1]["reason"].startswith("3 activations in the cache, fewer than min_activating=8")
    every = sample_latent_range(*args, wanted=None)
    assert sorted(r["latent"] for r in every.status_rows) == list(range(len(counts)))  # one row each
    assert {le.latent for le in two.kept} <= {le.latent for le in every.kept}


def test_neighbour_negatives_are_a_decoder_neighbours_windows_where_the_latent_is_silent(setup):
    """Planted decoder: latent b's direction is a's plus a little noise, every other direction random. a's
    neighbour negatives are b's windows, a silent throughout; the explainer's and the scorers' shares never
    share a token with each other or with a random or hard negative, and they survive storage."""
    dense, width = setup["dense"], CONFIG.example_ctx_len
    ok = ok_latents(setup)
    counts = dense.astype(bool).sum(axis=(0, 1))
    a = ok[0].latent
    b = max((le.latent for le in ok[1:]), key=lambda latent: counts[latent])
    rng = np.random.default_rng(0)
    decoder = rng.normal(size=(dense.shape[2], 32))
    decoder[b] = decoder[a] + 0.01 * rng.normal(size=32)
    decoder /= np.linalg.norm(decoder, axis=1, keepdims=True)
    assert nearest_latents(decoder, [a], 1) == {a: [b]}
    config = CONFIG.model_copy(update={"n_neighbour_negatives": 4, "neighbour_latents": 1})
    [le] = build_examples(setup["cache"], setup["tokens"], setup["decode"], [a], KEY, config,
                          pool_embeddings=setup["pool"], decoder=decoder)
    shares = le.neighbour_train + le.neighbour_test
    assert len(le.neighbour_train) == len(le.neighbour_test) == 4
    for e in shares:
        assert e.kind == NEIGHBOUR_NEGATIVE and e.normalized == (0,) * width
        assert not dense[e.row, e.start:e.start + width, a].any()  # a is silent in the whole window
        assert dense[e.row, e.start:e.start + width, b].any()  # b fires in it
        assert e.tokens == tuple(setup["decode"].strings(setup["tokens"][e.row, e.start:e.start + width]).tolist())
    others = shares + le.random_negatives + le.hard_negative_train + le.hard_negative_test
    for e in shares:
        assert all(o is e or o.row != e.row or abs(o.start - e.start) >= width for o in others)
    # b's strongest window where a is silent comes first, in the explainer's share
    records = setup["cache"].records(b, b + 1)
    b_windows = activating_windows(*(records[c].to_numpy() for c in ("row", "pos", "activation")),
                                   setup["corpus"].ctx_len, setup["corpus"].first_position, config)
    silent = [(r, s) for r, s in zip(b_windows[0].tolist(), b_windows[1].tolist())
              if not dense[r, s:s + width, a].any()]
    assert (le.neighbour_train[0].row, le.neighbour_train[0].start) == silent[0]
    le.check_disjoint()
    back = rows_to_latent_examples(examples_to_rows(KEY, [le]))[a]
    assert back.neighbour_train == le.neighbour_train and back.neighbour_test == le.neighbour_test
