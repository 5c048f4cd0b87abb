"""The CTranslate2 engine against the torch one on a tiny real Qwen2 (the judge's architecture), converted here.

float32 compute makes the two engines' greedy tokens and logprobs comparable; int8 (the CPU default) is
checked for mechanics only, since its kernels differ between AVX2 and AVX-512 machines.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from autointerp_dagster.core.config import LLMConfig, load_settings
from autointerp_dagster.core.llm import (
    BackendError,
    ChatRequest,
    CT2Backend,
    LLMClient,
    LocalBackend,
    build_backend,
    ct2_backend,
)
from autointerp_dagster.core.llm.ct2_models import converted_ct2_folder
from autointerp_dagster.core.llm.factory import local_engine
from autointerp_dagster.core.llm.types import PromptScoreRequest
from autointerp_dagster.core.prompts.simulation import simulation_prompt
from tests.test_llm_client import _request, tiny_chat_model_dir, write_tiny_gguf  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def ct2_fp32(tiny_chat_model_dir, models_dir):  # noqa: F811
    return CT2Backend(str(tiny_chat_model_dir), models_dir, quantize="none", max_context=128)


@pytest.fixture(scope="module")
def torch_fp32(tiny_chat_model_dir, models_dir):  # noqa: F811
    return LocalBackend(str(tiny_chat_model_dir), models_dir, quantize="none", max_context=128)


def _judgment(text: str, system: str = "explain the latent") -> ChatRequest:
    """A per-example judgment's shape: a shared system turn, the example last, a one-token answer."""
    messages = [{"role": "system", "content": system}, {"role": "user", "content": "the cat sat"},
                {"role": "assistant", "content": "this"}, {"role": "user", "content": text}]
    return ChatRequest(messages, max_tokens=1, logprobs=True, top_logprobs=5)


def test_float32_generation_matches_the_torch_engine(ct2_fp32, torch_fp32):
    requests = [_request("explain the latent", max_tokens=6, logprobs=True, top_logprobs=4),
                _request("the cat sat on the mat", max_tokens=3), _judgment("words about dogs")]
    for request in requests:
        ours, theirs = ct2_fp32.generate(request), torch_fp32.generate(request)
        assert (ours.text, ours.tokens_in, ours.tokens_out) == (theirs.text, theirs.tokens_in, theirs.tokens_out)
        assert (ours.top_logprobs is None) == (theirs.top_logprobs is None)
        for mine, reference in zip(ours.top_logprobs or [], theirs.top_logprobs or []):
            assert mine.keys() == reference.keys()
            assert all(mine[t] == pytest.approx(reference[t], abs=1e-4) for t in mine)
    sampled = ct2_fp32.generate(_request("the cat", max_tokens=4, temperature=1.0))
    assert 1 <= sampled.tokens_out <= 4 and sampled.top_logprobs is None


def test_float32_prompt_logprobs_match_the_torch_engine(tiny_chat_model_dir, models_dir):  # noqa: F811
    """The simulation scorer's prompt logprobs: the same candidates at the same offsets, the same values."""
    ct2_fp32 = CT2Backend(str(tiny_chat_model_dir), models_dir, quantize="none", max_context=1024)
    torch_fp32 = LocalBackend(str(tiny_chat_model_dir), models_dir, quantize="none", max_context=1024)
    prompt = simulation_prompt("cats", ["the", " cat", " sat", " on", " a", " mat"], max_level=9)
    request = PromptScoreRequest(prompt.text, prompt.offsets, tuple(str(d) for d in range(10)) + ("10 cats",))
    ours, theirs = ct2_fp32.prompt_logprobs(request), torch_fp32.prompt_logprobs(request)
    assert ours.tokens_in == theirs.tokens_in and len(ours.logprobs) == len(prompt.offsets)
    assert [None if r is None else sorted(r) for r in ours.logprobs] == [
        None if r is None else sorted(r) for r in theirs.logprobs]
    assert all(r is not None and len(r) == 10 for r in ours.logprobs)  # every slot a token; '10 cats' is not one
    for mine, reference in zip(ours.logprobs, theirs.logprobs):
        for candidate in mine or {}:
            assert mine[candidate] == pytest.approx(reference[candidate], abs=1e-4) and mine[candidate] < 0


def test_int8_answers_carry_valid_logprobs(tiny_chat_model_dir, models_dir, store):  # noqa: F811
    client = LLMClient(CT2Backend(str(tiny_chat_model_dir), models_dir, max_context=128), store, concurrency=4)
    assert client.concurrency == 1 and client.backend.compute_type == "int8"
    results = client.complete([_request("explain the latent", max_tokens=5, logprobs=True, top_logprobs=4),
                               _judgment("words about dogs"), _request(" ".join(["cat"] * 300), max_tokens=4)])
    for result in results[:2]:
        assert result.ok and 1 <= result.tokens_out and len(result.top_logprobs) == result.tokens_out
        assert max(len(position) for position in result.top_logprobs) >= 4  # byte tokens that decode alike merge
        for position in result.top_logprobs:
            assert 1 <= len(position) <= 5 and all(lp <= 0 for lp in position.values())
            assert sum(math.exp(lp) for lp in position.values()) <= 1 + 1e-5
    assert results[2].status == "error" and "context" in results[2].error


def test_prefilled_answers_continue_and_stop_before_the_stop_string(ct2_fp32):
    started = [{"role": "user", "content": "explain the latent"}, {"role": "assistant", "content": "the cat"}]
    full = ct2_fp32.generate(ChatRequest(started, max_tokens=12))
    prompt = ct2_fp32._tokenizer("<|im_start|>user\nexplain the latent<|im_end|>\n<|im_start|>assistant\nthe cat")
    assert full.tokens_in == len(prompt["input_ids"])  # continues the answer, no new assistant turn
    stop = full.text.strip()[1:3]
    stopped = ct2_fp32.generate(ChatRequest(started, max_tokens=12, stop=(stop,)))
    assert stopped.text == full.text.split(stop, 1)[0] and stopped.tokens_out < full.tokens_out
    first = ct2_fp32.generate(ChatRequest(started, max_tokens=1))
    assert first.text and ct2_fp32.generate(ChatRequest(started, max_tokens=1, stop=(first.text,))).text == ""


def test_a_prompt_that_fills_the_context_is_refused(ct2_fp32):
    with pytest.raises(BackendError, match="fills the 128-token context"):
        ct2_fp32.generate(_request(" ".join(["cat"] * 300), max_tokens=1))


def test_judgments_do_not_depend_on_the_order_or_the_cached_prefix(tiny_chat_model_dir, models_dir,  # noqa: F811
                                                                   monkeypatch):
    """int8, the default: a shared prefix is cached, yet each answer is the same in any order and after the
    model is reloaded to drop cached prefixes."""
    prefilled = _judgment("the cat").messages + [{"role": "assistant", "content": "the"}]  # an explainer's shape
    requests = [_judgment("words about dogs"), _judgment("the mat"), _judgment("the cat", system="short sentence"),
                _request("the cat sat", max_tokens=1, logprobs=True, top_logprobs=5),
                ChatRequest(prefilled, max_tokens=3, logprobs=True, top_logprobs=5)]

    def answers(order, max_prefixes=8):
        monkeypatch.setattr(ct2_backend, "MAX_CACHED_PREFIXES", max_prefixes)
        backend = CT2Backend(str(tiny_chat_model_dir), models_dir)
        return {i: backend.generate(requests[i]).top_logprobs for i in order}, backend

    forward, backend = answers([0, 1, 2, 3, 4, 0])
    # cached from its second request on: the turns before the example, which the judgments and the prefilled
    # request share (its prefix ends before the last user message); not the one-off system turn's, and the
    # one-message request has none
    assert len(backend._prefixes) == 1
    backward, _ = answers([4, 3, 2, 1, 0])
    reloading, _ = answers([0, 2, 1, 3, 2, 4, 0], max_prefixes=1)
    assert forward == backward == reloading


def test_a_gguf_converts_in_memory_to_the_same_model(tiny_chat_model_dir, tmp_path):  # noqa: F811
    """No float32 safetensors copy on the way; the folder carries the tokenizer; float32 answers match the
    same weights converted from their folder."""
    (tmp_path / "gguf").mkdir()
    gguf = tmp_path / "gguf" / "tiny.gguf"
    write_tiny_gguf(tiny_chat_model_dir, gguf)
    request = _request("explain the latent", max_tokens=5, logprobs=True, top_logprobs=3)
    expected = CT2Backend(str(tiny_chat_model_dir), tmp_path / "from-folder", quantize="none").generate(request)
    backend = CT2Backend(str(gguf), tmp_path / "models", quantize="none")
    reply = backend.generate(request)
    assert reply.text == expected.text and reply.tokens_in == expected.tokens_in
    for got, want in zip(reply.top_logprobs, expected.top_logprobs):
        assert got.keys() == want.keys() and all(math.isclose(got[k], want[k], abs_tol=1e-4) for k in got)
    assert not (tmp_path / "models" / "converted").exists()
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["ct2"]  # no scratch left behind
    assert (backend._folder / "hf" / "tokenizer.json").is_file()


def test_conversion_happens_once_and_leaves_no_partial_folder(tiny_chat_model_dir, models_dir, tmp_path,  # noqa: F811
                                                              monkeypatch):
    import ctranslate2.converters

    folder = converted_ct2_folder(str(tiny_chat_model_dir), models_dir, "int8")
    assert (folder / "model.bin").is_file() and folder.parent == models_dir / "ct2"
    made = (folder / "model.bin").stat().st_mtime_ns

    class Killed:
        """Writes part of a model, then dies."""

        def __init__(self, *args, **kwargs):
            pass

        def convert(self, output_dir, **kwargs):
            Path(output_dir).mkdir()
            (Path(output_dir) / "model.bin").write_bytes(b"half")
            raise RuntimeError("killed mid-conversion")

    monkeypatch.setattr(ctranslate2.converters, "TransformersConverter", Killed)
    assert converted_ct2_folder(str(tiny_chat_model_dir), models_dir, "int8") == folder  # cached: no conversion
    assert (folder / "model.bin").stat().st_mtime_ns == made
    with pytest.raises(RuntimeError, match="killed"):
        converted_ct2_folder(str(tiny_chat_model_dir), tmp_path, "int8")
    assert list((tmp_path / "ct2").iterdir()) == []


def test_identity_names_the_engine_without_loading(tiny_chat_model_dir, tmp_path):  # noqa: F811
    def identity(engine_class, **settings):
        backend = engine_class(str(tiny_chat_model_dir), tmp_path / "models", device="cpu", **settings)
        return backend.identity

    ct2 = identity(CT2Backend)
    assert ct2["engine"] == "ctranslate2" and ct2["compute_type"] == "int8" and ct2["ctranslate2"]
    assert ct2 == identity(CT2Backend, threads=1)  # threads split the work, not the answer
    assert len({repr(i) for i in [ct2, identity(CT2Backend, quantize="none"), identity(LocalBackend),
                                  identity(CT2Backend, max_context=256)]}) == 4
    assert not (tmp_path / "models").exists()
    with pytest.raises(ValueError, match="auto, int8 or none"):
        CT2Backend(str(tiny_chat_model_dir), tmp_path, quantize="int4")


def test_the_engine_setting_picks_the_backend(tmp_path):
    def backend(**env):
        settings = load_settings(environ={f"AUTOINTERP_LLM_{k.upper()}": v for k, v in env.items()})
        return build_backend(settings.llm, tmp_path)

    assert isinstance(backend(device="cpu"), CT2Backend)  # auto on CPU
    assert isinstance(backend(device="cpu", engine="torch"), LocalBackend)
    assert backend(device="cpu", threads="3").threads == 3
    assert local_engine(LLMConfig(device="cuda")) == "torch"  # not compared on GPUs
    assert local_engine(LLMConfig(device="cuda", engine="ctranslate2")) == "ctranslate2"
