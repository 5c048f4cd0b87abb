"""Latent digests: peak-token counts that leave out the scorers' windows, tokens a decoder direction promotes,
decoder directions read from coder files, the top-tokens baseline explainer, and the digest explainer prompt."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autointerp_dagster.core.coders import CoderSource
from autointerp_dagster.core.coders.decoders import decoder_directions, unit_decoder_directions
from autointerp_dagster.core.explain.digest import (
    LatentDigest,
    digest_rows,
    digests_from_rows,
    promoted_tokens,
    top_tokens_explanation,
)
from autointerp_dagster.core.explain.explainers import FAILED, OK, baseline_explanations, baseline_key
from autointerp_dagster.core.models.subject import load_subject_model
from autointerp_dagster.core.prompts.explainer import build_explainer_messages, parse_explanation, prefilled_answer
from autointerp_dagster.core.sampling.build import peak_token_counts

from .conftest import write_sparsify_sae
from .test_sampling import setup  # noqa: F401  (the tiny cache fixture)


def test_peak_token_counts_merge_spacing_and_escape_whitespace():
    peaks = np.array([" upon", "upon", " into", "\n", "\n", "\n", " upon"], dtype=object)
    assert peak_token_counts(peaks, 2) == [("\\n", 3), ("upon", 3)]  # ties by token
    assert peak_token_counts(peaks, 10)[-1] == ("into", 1)


def test_top_tokens_come_only_from_windows_no_scorer_judges(setup):  # noqa: F811
    decode, cache, tokens = setup["decode"], setup["cache"], setup["tokens"]
    for le in [le for le in setup["examples"] if le.status == "ok"][:6]:
        table = cache.records(le.latent, le.latent + 1)
        row, pos, act = (table[c].to_numpy() for c in ("row", "pos", "activation"))
        judged = {(e.row, e.start) for e in le.test}
        width = len(le.test[0].tokens)
        # Each window's peak: its strongest record; windows the scorers judge are left out.
        expected: dict[str, int] = {}
        from autointerp_dagster.core.sampling import activating_windows

        from .test_sampling import CONFIG
        win_row, win_start, peak = activating_windows(row, pos.astype(np.int64), act, tokens.shape[1],
                                                      int(cache.manifest["first_position"]), CONFIG)
        for r, s, p in zip(win_row.tolist(), win_start.tolist(), peak.tolist()):
            if (r, s) in judged:
                continue
            token = decode.strings(np.array([tokens[r, pos[p]]]))[0]
            key = token.strip() or token.encode("unicode_escape").decode()
            expected[key] = expected.get(key, 0) + 1
            assert s <= pos[p] < s + width
        top = sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))[: CONFIG.digest_tokens]
        assert le.top_tokens == top
        assert sum(n for _, n in le.top_tokens) <= le.n_activating_windows - len(le.test)


def test_promoted_tokens_rank_the_unembedding_a_direction_points_at(tiny_model_dir, tmp_path):
    model = load_subject_model(str(tiny_model_dir), tmp_path / "models")
    unembedding = model.model.get_output_embeddings().weight.detach()
    norm_weight = 1.0 + model.body.norm.weight.detach()  # Gemma's RMSNorm scales by (1 + weight)
    targets = [40, 41, 200]
    directions = unembedding[targets] / norm_weight  # after the final norm, exactly that token's row (scaled)
    found = promoted_tokens(model, directions, top=3)
    for target, tokens in zip(targets, found):
        assert tokens[0][0] == model.tokenizer.decode([target])
        assert tokens[0][1] >= tokens[1][1] >= tokens[2][1]
    counts = np.zeros(len(unembedding), dtype=np.int64)
    counts[[41, 7, 8, 9]] = 10  # token 40 never occurs in this corpus
    seen = promoted_tokens(model, directions[:2], top=2, corpus_counts=counts)
    assert seen[0][0][0] != model.tokenizer.decode([40])
    assert {t for t, _ in seen[1]} <= {model.tokenizer.decode([i]) for i in (41, 7, 8, 9)}
    special = model.tokenizer.bos_token_id
    assert model.tokenizer.decode([special]) not in {
        t for ts in promoted_tokens(model, unembedding[[special]] / norm_weight, top=3) for t, _ in ts}


def test_decoder_directions_of_a_sparsify_sae_and_of_neurons(tiny_model_dir, tmp_path):
    from safetensors.torch import load_file

    folder = write_sparsify_sae(tmp_path / "layers.1", 64, 48, 4, seed=2)
    directions = decoder_directions(CoderSource(str(folder)))
    assert torch.equal(directions, load_file(folder / "sae.safetensors")["W_dec"].float())
    unit = unit_decoder_directions(CoderSource(str(folder)))
    assert np.allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    assert np.allclose(unit * np.linalg.norm(directions.numpy(), axis=1, keepdims=True), directions.numpy(), atol=1e-5)
    model = load_subject_model(str(tiny_model_dir), tmp_path / "models")
    neurons = decoder_directions(CoderSource("", hookpoint="layers.1.mlp", kind="neurons"), model.body)
    down = model.body.layers[1].mlp.down_proj.weight
    assert neurons.shape == (down.shape[1], down.shape[0]) and torch.equal(neurons[5], down[:, 5])
    with pytest.raises(ValueError, match="base\nmodel|base model"):
        decoder_directions(CoderSource("", hookpoint="layers.1.mlp", kind="neurons"))


def test_digest_rows_round_trip():
    digests = [LatentDigest(3, (("upon", 5), ("into", 2)), (("earth", 1.5),), ((" king", 0.25),), "ab12cd34"),
               LatentDigest(9, (("LORD", 7),))]
    rows = digest_rows("m/layers.1", digests)
    assert [(r["latent"], r["kind"], r["rank"]) for r in rows][:4] == [
        (3, "top_activating", 0), (3, "top_activating", 1), (3, "promoted", 0), (3, "steered:ab12cd34", 0)]
    assert digests_from_rows(list(reversed(rows))) == {3: digests[0], 9: digests[1]}
    assert digests[0].output_side("steering") == ((" king", 0.25),)
    assert digests[0].output_side("unembedding") == (("earth", 1.5),)


def test_the_output_view_chooses_which_promoted_tokens_the_explainer_sees_and_keys_its_results(store):
    from autointerp_dagster.core.config import ExplainerConfig
    from autointerp_dagster.core.explain.explainers import ExplainItem, explain_latents, explainer_id
    from autointerp_dagster.core.llm import LLMClient, OpenAIBackend
    from autointerp_dagster.core.prompts.explainer import _example_from_marked

    from .openai_stub_server import StubLLMServer

    digest = LatentDigest(4, (("upon", 5),), (("earth", 1.5),), ((" king", 0.3), (" throne", 0.1)))
    item = ExplainItem(4, [_example_from_marked("He sat <<upon>> the throne.", (9,))], digest=digest)
    prompts = {}
    with StubLLMServer(reply="[EXPLANATION]: the word upon") as server:
        for view in ("unembedding", "steering"):
            config = ExplainerConfig(output_view=view)
            client = LLMClient(OpenAIBackend(server.base_url, "stub"), store)
            [result] = explain_latents(client, [item], config)
            assert result.status == OK
            prompts[view] = server.requests[-1].prompt
    assert 'predict next: "earth"' in prompts["unembedding"] and "king" not in prompts["unembedding"]
    assert 'predict next: "king", "throne"' in prompts["steering"] and "earth" not in prompts["steering"]
    assert explainer_id(ExplainerConfig(output_view="steering")) != explainer_id(ExplainerConfig())
    # the steering settings name results only where the steering view uses them
    assert explainer_id(ExplainerConfig(steering_prompts=8)) == explainer_id(ExplainerConfig())
    assert explainer_id(ExplainerConfig(output_view="steering", steering_prompts=8)) != explainer_id(
        ExplainerConfig(output_view="steering"))
    # Fields added later count only away from their defaults: stored explanations keep their ids.
    assert explainer_id(ExplainerConfig()) == "default-bb15702b"


def test_baseline_explains_by_top_tokens_and_records_latents_without_a_digest():
    digests = {1: LatentDigest(1, (("upon", 5), ("into", 2), ("unto", 2), ("over", 1)))}
    assert top_tokens_explanation(digests[1], 3) == 'the words "upon", "into", "unto"'
    ok, missing = baseline_explanations([1, 2], digests, 3)
    assert (ok.status, ok.explanation) == (OK, 'the words "upon", "into", "unto"')
    assert (missing.status, missing.explanation) == (FAILED, None) and "digest" in missing.error
    assert baseline_key(3).label == "none:top-tokens" and baseline_key(3).explainer == "top-tokens-3"


def test_digest_prompt_shows_both_sides_and_shots_answer_with_tokens_first(setup):  # noqa: F811
    le = next(le for le in setup["examples"] if le.status == "ok")
    messages = build_explainer_messages(le.train[:3], few_shot=True, prefill=True, show_activations=False,
                                        digest="input+output", top_tokens=[("upon", 12), ("into", 3)],
                                        promoted=["earth", "ground"])
    last_user = messages[-2]["content"]
    assert 'Marked most often (times it was the strongest token of a text): "upon" (12), "into" (3)' in last_user
    assert 'Words it makes the model predict next: "earth", "ground"' in last_user
    assert messages[-1] == {"role": "assistant", "content": prefilled_answer("input+output")}
    shots = [m["content"] for m in messages[1:-2] if m["role"] == "assistant"]
    assert len(shots) == 3 and all(parse_explanation(s).startswith('"') for s in shots)
    only_input = build_explainer_messages(le.train[:3], digest="input", top_tokens=[("upon", 12)],
                                          promoted=["earth"])
    assert "predict next" not in only_input[-1]["content"] and '"upon" (12)' in only_input[-1]["content"]
    plain = build_explainer_messages(le.train[:3], digest="none", top_tokens=[("upon", 12)])
    assert "Marked most often" not in "".join(m["content"] for m in plain)
    with pytest.raises(ValueError, match="digest"):
        build_explainer_messages(le.train[:3], digest="both")


def test_counts_copied_from_the_digest_are_dropped():
    from autointerp_dagster.core.prompts.explainer import without_counts

    assert without_counts('"." (125), "ites" (67), "," (36): a group') == '".", "ites", ",": a group'
    assert without_counts('"or", "!" (both appear 44 times), "nor" (8 times)') == '"or", "!", "nor"'
    assert without_counts('"bank" (as in money)') == '"bank" (as in money)'


def test_the_output_side_explainer_steers_in_examples_and_its_prompts_show_what_steering_promotes(
        project, monkeypatch, tmp_path, llm_server):
    """`explainer.output_view: steering` on the tiny model's pipeline: `examples` steers each sampled latent on its
    explainer windows (digest kind 'steered:<settings id>'), each explainer prompt shows its latent's steered
    tokens and not its unembedding ones, and explanations asked for from digests made without steering, or with
    other steering settings, are refused with what to do."""
    import re

    from dagster import AssetKey, DagsterInstance

    from autointerp_dagster.core.config import load_settings
    from autointerp_dagster.core.explain.digest import steering_settings_id
    from autointerp_dagster.core.prompts.explainer import format_digest
    from autointerp_dagster.core.store import ResultsStore
    from autointerp_dagster.definitions import defs
    from autointerp_dagster.partitions import SAE_DIMENSION, latent_range_partitions, sae_range_key

    key = "tiny/layers.1/run-a"
    partition = sae_range_key(key, latent_range_partitions.get_partition_keys()[0])
    output_lines = re.compile(r"^Words it makes the model predict next: .*$", re.MULTILINE)
    with DagsterInstance.ephemeral(tempdir=str(tmp_path / "dagster")) as instance:
        instance.add_dynamic_partitions(SAE_DIMENSION, [key])
        for job, kwargs in [("inputs_job", {}), ("cache_job", {"partition_key": key})]:
            assert defs.resolve_job_def(job).execute_in_process(instance=instance, **kwargs).success
        explain = defs.resolve_job_def("explain_job")
        only_explanations = explain.get_subset(asset_selection={AssetKey("explanations")})
        assert explain.execute_in_process(instance=instance, partition_key=partition).success  # unembedding view
        store = ResultsStore(project.db_path)
        kinds = "SELECT kind, count(DISTINCT latent) AS n FROM latent_digest GROUP BY kind ORDER BY kind"
        assert [r["kind"] for r in store.query(kinds).to_pylist()] == ["promoted", "top_activating"]

        monkeypatch.setenv("AUTOINTERP_EXPLAINER_OUTPUT_VIEW", "steering")
        refused = only_explanations.execute_in_process(instance=instance, partition_key=partition,
                                                       raise_on_error=False)
        assert not refused.success and "materialise `examples`" in str(refused.all_events)

        sent = len(llm_server.requests)
        result = explain.execute_in_process(instance=instance, partition_key=partition)
        assert result.success
        [metadata] = [m.metadata for m in result.asset_materializations_for_node("examples")]
        assert metadata["output_view"].value == "steering" and "steering_seconds" in metadata
        steered_kind = f"steered:{steering_settings_id(load_settings())}"
        counts = {r["kind"]: r["n"] for r in store.query(kinds).to_pylist()}
        assert metadata["latents_steered"].value == counts[steered_kind]
        assert counts[steered_kind] == counts["top_activating"] > 0
        rows = store.query("SELECT latent, kind, token FROM latent_digest WHERE kind <> 'top_activating' "
                           "ORDER BY latent, kind, rank").to_pylist()
        lines = {view: {format_digest((), [r["token"] for r in rows if r["latent"] == latent and r["kind"] == kind])
                        for latent in {r["latent"] for r in rows}}
                 for view, kind in (("steering", steered_kind), ("unembedding", "promoted"))}
        shown = [line for r in llm_server.requests[sent:] for line in output_lines.findall(r.prompt)]  # last turn
        assert len(shown) == counts[steered_kind] and set(shown) == lines["steering"]
        assert not set(shown) & (lines["unembedding"] - lines["steering"])

        monkeypatch.setenv("AUTOINTERP_STEERING_KL_TARGET", "0.33")  # other steering: stale digests
        stale = only_explanations.execute_in_process(instance=instance, partition_key=partition, raise_on_error=False)
        assert not stale.success and "materialise `examples`" in str(stale.all_events)
