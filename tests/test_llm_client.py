"""The LLM client against a real HTTP stub server and a tiny local model."""

from __future__ import annotations

import logging
import math
import time

import pytest
import torch

from autointerp_dagster.core.config import ConfigError, load_settings
from autointerp_dagster.core.llm import (
    ChatRequest,
    LLMClient,
    LocalBackend,
    OpenAIBackend,
    build_backend,
    build_client,
)
from autointerp_dagster.core.store import ResultsStore
from tests.openai_stub_server import Fault, StubLLMServer, StubReply


@pytest.fixture
def server():
    with StubLLMServer(reply=lambda messages: f"echo {messages[-1]['content']}") as stub:
        yield stub


def _backend(server: StubLLMServer, **overrides) -> OpenAIBackend:
    settings = dict(timeout_s=2.0, max_retries=3, backoff_base_s=0.01, backoff_max_s=0.05)
    settings.update(overrides)
    return OpenAIBackend(server.base_url, "stub-model", **settings)


def _request(prompt: str, **kwargs) -> ChatRequest:
    kwargs.setdefault("max_tokens", 16)
    return ChatRequest([{"role": "user", "content": prompt}], **kwargs)


def _rows(store: ResultsStore, sql: str) -> list[dict]:
    with store.connect() as con:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def _calls(store: ResultsStore) -> list[dict]:
    return _rows(store, "SELECT * FROM llm_calls ORDER BY created_at")


# --- retries -------------------------------------------------------------------------


def test_rate_limit_is_retried_after_the_servers_retry_after(server, store):
    server.enqueue(Fault.rate_limit(retry_after=0.5))
    client = LLMClient(_backend(server), store)
    start = time.perf_counter()
    [result] = client.complete([_request("hi")])
    assert time.perf_counter() - start >= 0.5  # the back-off alone would wait <= 0.01 s
    assert result.ok and result.text == "echo hi"
    assert server.call_count == 2
    [call] = _calls(store)
    assert (call["attempts"], call["status"]) == (2, "ok")


def test_server_errors_then_success(server, store):
    server.enqueue(Fault.server_error(500), Fault.server_error(503))
    [result] = LLMClient(_backend(server), store).complete([_request("hi")])
    assert result.ok and result.text == "echo hi"
    assert server.call_count == 3


def test_timeout_then_success(server):
    server.enqueue(Fault.hang(1.5))
    start = time.perf_counter()
    [result] = LLMClient(_backend(server, timeout_s=0.3)).complete([_request("hi")])
    assert result.ok and result.text == "echo hi"
    assert server.call_count == 2
    assert time.perf_counter() - start < 1.2


@pytest.mark.parametrize("body", ['{"id": "broken", "choices": [', '{"choices": []}', '{"error": null}'])
def test_malformed_body_then_success(server, body):
    server.enqueue(Fault.malformed(body))
    [result] = LLMClient(_backend(server)).complete([_request("hi")])
    assert result.ok and result.text == "echo hi"
    assert server.call_count == 2


def test_exhausted_retries_become_an_error_result(store):
    with StubLLMServer(reply=lambda messages: Fault.server_error()) as server:
        results = LLMClient(_backend(server, max_retries=2), store).complete([_request("a"), _request("b")])
    assert [r.status for r in results] == ["error", "error"]
    assert all(r.text is None and "HTTP 500" in r.error for r in results)
    assert server.call_count == 6  # 1 + 2 retries each
    assert {(c["status"], c["attempts"]) for c in _calls(store)} == {("error", 3)}
    assert _rows(store, "SELECT count(*) AS n FROM llm_responses") == [{"n": 0}]


def test_unreachable_server_is_an_error_result():
    with StubLLMServer() as server:
        url = server.base_url  # a port nothing listens on once the server stops
    backend = OpenAIBackend(url, "stub-model", max_retries=1, backoff_base_s=0.01)
    [result] = LLMClient(backend).complete([_request("hi")])
    assert result.status == "error" and result.error.startswith("connection error")


def test_empty_batch(store):
    assert LLMClient(OpenAIBackend("http://127.0.0.1:9/v1", "m"), store).complete([]) == []


@pytest.mark.parametrize("status", [400, 401, 404])
def test_other_client_errors_are_not_retried(server, status):
    server.enqueue(Fault.http(status, "nope"))
    [result] = LLMClient(_backend(server)).complete([_request("hi")])
    assert result.status == "error" and result.error == f"HTTP {status}: nope"
    assert server.call_count == 1


def test_one_failure_does_not_sink_the_batch(store):
    def reply(messages):
        prompt = messages[-1]["content"]
        return Fault.http(400, "bad prompt") if prompt == "p3" else f"echo {prompt}"

    with StubLLMServer(reply=reply) as server:
        results = LLMClient(_backend(server), store, concurrency=4).complete(
            [_request(f"p{i}") for i in range(8)]
        )
    assert [r.status for r in results].count("error") == 1 and results[3].status == "error"
    assert [r.text for i, r in enumerate(results) if i != 3] == [f"echo p{i}" for i in range(8) if i != 3]


# --- logprobs --------------------------------------------------------------------------


def test_logprobs_are_parsed_per_token(server):
    yes, no = math.log(0.7), math.log(0.2)
    server.reply = lambda messages: StubReply("Yes", top_logprobs=[{"Yes": yes, "No": no, "Maybe": -5.0}])
    [result] = LLMClient(_backend(server)).complete([_request("q", logprobs=True, top_logprobs=2)])
    assert result.top_logprobs == [{"Yes": yes, "No": no}]
    body = server.requests[0].body
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    assert result.tokens_out == 1


def test_logprobs_rejecting_server_is_remembered(store):
    with StubLLMServer(reply="Yes", reject_logprobs=True) as server:
        client = LLMClient(_backend(server), store, concurrency=1)
        results = client.complete([_request(f"q{i}", logprobs=True, top_logprobs=5) for i in range(3)])
    assert all(r.ok and r.text == "Yes" and r.top_logprobs is None for r in results)
    assert server.call_count == 4  # one rejected attempt, then three without logprobs
    assert [bool(r.body.get("logprobs")) for r in server.requests] == [True, False, False, False]


# --- concurrency, ordering, progress ---------------------------------------------------------


def test_requests_run_in_parallel(store):
    latency, n, concurrency = 0.2, 32, 8
    with StubLLMServer(reply="ok", latency_s=latency) as server:
        client = LLMClient(_backend(server), store, concurrency=concurrency)
        start = time.perf_counter()
        results = client.complete([_request(f"p{i}") for i in range(n)])
        elapsed = time.perf_counter() - start
    ideal = n / concurrency * latency  # 0.8 s; serial would take 6.4 s
    assert all(r.ok for r in results)
    assert ideal * 0.95 <= elapsed < ideal * 2


def test_results_keep_request_order_and_report_progress(server):
    progress = []
    requests = [_request(f"p{i}") for i in range(20)]
    results = LLMClient(_backend(server), concurrency=6).complete(
        requests, on_progress=lambda done, total: progress.append((done, total))
    )
    assert [r.text for r in results] == [f"echo p{i}" for i in range(20)]
    assert progress == [(i, 20) for i in range(1, 21)]


# --- cache and call log -----------------------------------------------------------------


def test_second_run_is_served_from_the_cache(server, store):
    requests = [_request(f"p{i}", logprobs=True, top_logprobs=3, purpose="score") for i in range(5)]
    first = LLMClient(_backend(server), store).complete(requests)
    assert server.call_count == 5 and not any(r.cached for r in first)

    second = LLMClient(_backend(server), store).complete(requests)
    assert server.call_count == 5
    assert all(r.cached for r in second)
    def answer(r):
        return r.text, r.top_logprobs, r.tokens_in, r.tokens_out

    assert [answer(r) for r in second] == [answer(r) for r in first]
    statuses = [c["status"] for c in _calls(store)]
    assert statuses == ["ok"] * 5 + ["cached"] * 5
    assert {c["purpose"] for c in _calls(store)} == {"score"}


def test_cache_key_covers_sampling_settings(server, store):
    client = LLMClient(_backend(server), store)
    client.complete([_request("p"), _request("p", max_tokens=8), _request("p", temperature=0.7),
                     _request("p", logprobs=True, top_logprobs=2), _request("p", purpose="other")])
    assert server.call_count == 4  # purpose is only a label: the last request is the first one again
    [again] = client.complete([_request("p", purpose="other")])
    assert again.cached and server.call_count == 4


def test_rerun_sends_only_what_failed(server, store):
    requests = [_request(f"p{i}") for i in range(10)]
    failing = {"p1", "p4", "p7"}
    healthy = server.reply

    def flaky(messages):
        return Fault.server_error() if messages[-1]["content"] in failing else healthy(messages)

    server.reply = flaky
    first = LLMClient(_backend(server, max_retries=1), store, concurrency=4).complete(requests)
    assert {requests[i].messages[0]["content"] for i, r in enumerate(first) if not r.ok} == failing

    server.reply, sent = healthy, server.call_count  # the same server (cache keys name it), recovered
    second = LLMClient(_backend(server), store, concurrency=4).complete(requests)
    assert sorted(r.prompt for r in server.requests[sent:]) == sorted(failing)
    assert [r.text for r in second] == [f"echo p{i}" for i in range(10)]


def test_results_done_before_an_interruption_are_kept(store, monkeypatch):
    requests = [_request(f"p{i}") for i in range(10)]

    def interrupt_after_four(done, total):
        if done == 4:
            raise KeyboardInterrupt

    with StubLLMServer(reply="ok", latency_s=0.05) as server:
        with pytest.raises(KeyboardInterrupt):
            LLMClient(_backend(server), store, concurrency=1).complete(requests, on_progress=interrupt_after_four)
        # The same server (cache keys name it); the resumed run's requests are told apart by their key,
        # as one of the interrupted run may still be arriving.
        monkeypatch.setenv("RESUMED_KEY", "resumed")
        results = LLMClient(_backend(server, api_key_env="RESUMED_KEY"), store, concurrency=1).complete(requests)
    assert [r.cached for r in results] == [True] * 4 + [False] * 6
    assert sum(r.authorization == "Bearer resumed" for r in server.requests) == 6


def test_without_cache_every_run_calls_the_backend(server, store):
    client = LLMClient(_backend(server), store, use_cache=False)
    client.complete([_request("p")])
    client.complete([_request("p")])
    assert server.call_count == 2
    assert len(_calls(store)) == 2


def test_api_key_never_reaches_store_logs_or_results(store, monkeypatch, caplog, tmp_path):
    secret = "sk-test-DO-NOT-STORE-4f9a2c7e1b"
    monkeypatch.setenv("AUTOINTERP_TEST_KEY", secret)

    def reply(messages):  # servers that quote the key back in their errors
        if messages[-1]["content"] == "auth":
            return Fault.http(401, f"Incorrect API key provided: {secret}")
        return Fault.http(503, f"overloaded, key {secret}")

    caplog.set_level(logging.DEBUG)
    with StubLLMServer(reply=reply) as server:
        settings = load_settings(environ={
            "AUTOINTERP_LLM_BACKEND": "openai", "AUTOINTERP_LLM_BASE_URL": server.base_url,
            "AUTOINTERP_LLM_MODEL": "stub-model", "AUTOINTERP_LLM_API_KEY_ENV": "AUTOINTERP_TEST_KEY",
            "AUTOINTERP_TEST_KEY": secret, "AUTOINTERP_LLM_MAX_RETRIES": "1"})
        client = build_client(settings.llm, build_backend(settings.llm, tmp_path / "models"), store)
        results = client.complete([_request("auth"), _request("busy")])
    assert server.requests[0].authorization == f"Bearer {secret}"  # the key is used ...
    assert [r.status for r in results] == ["error", "error"]
    assert "Incorrect API key provided: [redacted]" in results[0].error
    texts = [repr(results), repr(settings), repr(client.backend), caplog.text]
    for table in ("llm_calls", "llm_responses"):
        texts.append(repr(_rows(store, f"SELECT * FROM {table}")))
    assert "overloaded" in caplog.text and "[redacted]" in caplog.text  # the logs were captured
    assert not [t for t in texts if secret in t]  # ... and never kept
    assert secret.encode() not in (tmp_path / "results.duckdb").read_bytes()


def test_llm_settings_build_the_named_backend(tmp_path):
    settings = load_settings(environ={
        "AUTOINTERP_LLM_BACKEND": "local", "AUTOINTERP_LLM_MODEL": "/models/qwen",
        "AUTOINTERP_LLM_CONCURRENCY": "3", "AUTOINTERP_LLM_TIMEOUT_S": "7.5", "AUTOINTERP_LLM_ENGINE": "torch"})
    llm = settings.llm
    assert (llm.backend, llm.model, llm.concurrency, llm.timeout_s, llm.api_key_env) == (
        "local", "/models/qwen", 3, 7.5, "OPENAI_API_KEY")
    client = build_client(llm, build_backend(llm, tmp_path), None)
    assert isinstance(client.backend, LocalBackend) and client.concurrency == 1
    with pytest.raises(ConfigError, match="llm.backend"):
        load_settings(environ={"AUTOINTERP_LLM_BACKEND": "nope"})


# --- local backend ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_chat_model_dir(tmp_path_factory):
    """A randomly initialised two-layer Qwen2 with a word-level tokenizer; no download."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    folder = tmp_path_factory.mktemp("tiny-qwen2")
    bpe = Tokenizer(models.BPE())  # byte-level BPE, like Qwen's own tokenizer
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        ["the cat sat on the mat", "this latent fires on words about cats and dogs",
         "system user assistant explain the latent in one short sentence"],
        trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                            initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_local_backend_generates_with_logprobs(tiny_chat_model_dir, store, tmp_path):
    backend = LocalBackend(str(tiny_chat_model_dir), tmp_path / "models", max_context=128)
    client = LLMClient(backend, store, concurrency=4)
    assert client.concurrency == 1
    requests = [
        _request("explain the latent", max_tokens=5, logprobs=True, top_logprobs=4),
        _request("the cat sat on the mat", max_tokens=3, logprobs=True, top_logprobs=4),
        _request("the cat", max_tokens=4, temperature=1.0),
        _request(" ".join(["cat"] * 300), max_tokens=4),  # longer than the context
    ]
    results = client.complete(requests)
    for result, request in zip(results[:3], requests[:3]):
        assert result.ok and isinstance(result.text, str)
        assert 1 <= result.tokens_out <= request.max_tokens and result.tokens_in > 8
    for result in results[:2]:
        assert len(result.top_logprobs) == result.tokens_out
        # the top 4 plus the chosen token if not among them; byte tokens that decode alike merge
        assert max(len(position) for position in result.top_logprobs) >= 4
        for position in result.top_logprobs:
            assert 1 <= len(position) <= 5
            assert all(lp <= 0 for lp in position.values())
            assert sum(math.exp(lp) for lp in position.values()) <= 1 + 1e-5
    assert results[2].top_logprobs is None
    assert results[3].status == "error" and "context" in results[3].error

    fresh = LocalBackend(str(tiny_chat_model_dir), tmp_path / "models", max_context=128)
    again = LLMClient(fresh).complete(requests[:2])
    assert [(r.text, r.top_logprobs) for r in again] == [(r.text, r.top_logprobs) for r in results[:2]]


def test_local_backend_continues_a_prefilled_answer_and_stops_before_the_stop_string(tiny_chat_model_dir, tmp_path):
    backend = LocalBackend(str(tiny_chat_model_dir), tmp_path / "models")
    started = [{"role": "user", "content": "explain the latent"}, {"role": "assistant", "content": "the cat"}]
    full = backend.generate(ChatRequest(started, max_tokens=12))
    prompt = backend._tokenizer("<|im_start|>user\nexplain the latent<|im_end|>\n<|im_start|>assistant\nthe cat")
    assert full.tokens_in == len(prompt["input_ids"])  # continues the answer, no new assistant turn
    stop = full.text.strip()[1:3]  # some text inside the greedy answer
    stopped = backend.generate(ChatRequest(started, max_tokens=12, stop=(stop,)))
    assert stopped.text == full.text.split(stop, 1)[0] and stopped.tokens_out < full.tokens_out
    first = backend.generate(ChatRequest(started, max_tokens=1))  # the one-token path honours stop too
    assert first.text and backend.generate(ChatRequest(started, max_tokens=1, stop=(first.text,))).text == ""


def test_int8_only_where_its_kernels_exist(tiny_chat_model_dir, tmp_path):
    with pytest.raises(ValueError, match="auto, int8 or none"):
        LocalBackend(str(tiny_chat_model_dir), tmp_path, quantize="int4")
    with pytest.raises(ValueError, match="cpu and dtype float32"):
        LocalBackend(str(tiny_chat_model_dir), tmp_path, dtype="bfloat16", quantize="int8")
    bf16 = LocalBackend(str(tiny_chat_model_dir), tmp_path, dtype="bfloat16")
    assert not bf16.quantize and bf16.generate(ChatRequest([{"role": "user", "content": "the cat"}], 2)).tokens_out


def write_tiny_gguf(model_dir, gguf_path) -> None:
    """Writes the tiny HF model as an unquantised qwen2 GGUF, tokenizer and chat template included."""
    import json

    import gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = model.config
    bpe = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    tokens = [token for token, _ in sorted(bpe["vocab"].items(), key=lambda kv: kv[1])]
    special = set(tokenizer.all_special_tokens) | {"<|im_start|>"}

    writer = gguf.GGUFWriter(str(gguf_path), "qwen2")
    writer.add_name("tiny-qwen2")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(float(config.rope_parameters["rope_theta"]))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens])
    writer.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in bpe["merges"]])
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_chat_template(tokenizer.chat_template)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, config.num_hidden_layers)
    for key, value in model.state_dict().items():
        if key == "lm_head.weight" and config.tie_word_embeddings:
            continue
        base, suffix = key.rsplit(".", 1)
        writer.add_tensor(f"{names.get_name(base)}.{suffix}", value.numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_local_backend_converts_a_gguf_once(tiny_chat_model_dir, tmp_path, monkeypatch):
    import transformers

    gguf_dir = tmp_path / "gguf"
    gguf_dir.mkdir()
    write_tiny_gguf(tiny_chat_model_dir, gguf_dir / "tiny.gguf")
    request = _request("explain the latent", max_tokens=5, logprobs=True, top_logprobs=3)
    expected = LocalBackend(str(tiny_chat_model_dir), tmp_path / "unused").generate(request)

    converted = LocalBackend(str(gguf_dir / "tiny.gguf"), tmp_path / "models")
    assert converted.generate(request) == expected
    [folder] = (tmp_path / "models" / "converted").iterdir()
    assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()

    def no_second_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_config", no_second_conversion)
    again = LocalBackend(str(gguf_dir / "tiny.gguf"), tmp_path / "models")
    assert again.generate(request) == expected


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_one_token_judgments_reuse_the_prefix_and_match_generate(tiny_chat_model_dir, tmp_path, quantize):
    fast = LocalBackend(str(tiny_chat_model_dir), tmp_path / "models", quantize=quantize)
    system = {"role": "system", "content": "judge whether the latent is active answer yes or no"}
    texts = ["the river runs to the sea", "the king spoke to the people", "rain fell on the hills all night"]
    judgments = [ChatRequest([system, {"role": "user", "content": f"explanation water text {t}"}], max_tokens=1,
                             logprobs=True, top_logprobs=4) for t in texts]
    answers = [fast.generate(r) for r in judgments]
    # The generate path (two tokens) on the same prompts gives the same first token and logprobs.
    for request, answer in zip(judgments, answers):
        full = fast.generate(ChatRequest(request.messages, max_tokens=2, logprobs=True, top_logprobs=4))
        assert answer.tokens_out == 1 and answer.tokens_in == full.tokens_in
        # int8 quantises activations per forward call, so computing the prompt in two chunks moves logprobs
        # by ~1e-3: on this random tiny model that can reorder near-tied tokens, so only float32 must agree
        # on the token itself.
        if quantize == "none":
            assert full.text.startswith(answer.text)
            assert answer.top_logprobs[0].keys() == full.top_logprobs[0].keys()
        shared = answer.top_logprobs[0].keys() & full.top_logprobs[0].keys()
        assert len(shared) >= 3
        for token in shared:
            assert answer.top_logprobs[0][token] == pytest.approx(
                full.top_logprobs[0][token], abs=1e-4 if quantize == "none" else 2e-2)
    # Consecutive judgments keep the first chunk (the messages before the last) instead of recomputing it.
    assert 0 < len(fast._prefix_ids) < answers[-1].tokens_in


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_one_token_answer_does_not_depend_on_the_request_before(tiny_chat_model_dir, tmp_path, quantize):
    """Dynamic int8 scales activations per forward call: the chunks a prompt is computed in must depend on the
    request alone, or the response cache would keep whichever order happened first."""
    system = {"role": "system", "content": "judge whether the latent is active answer yes or no"}
    shot = [{"role": "user", "content": "explanation fire text the lamp burned"},
            {"role": "assistant", "content": "yes"}]
    requests = [ChatRequest([system, *shot, {"role": "user", "content": f"explanation water text {t}"}], max_tokens=1,
                            logprobs=True, top_logprobs=4)
                for t in ("the river runs to the sea", "the king spoke to the people all day long")]
    first = LocalBackend(str(tiny_chat_model_dir), tmp_path / "a", quantize=quantize)
    alone = first.generate(requests[0])
    second = LocalBackend(str(tiny_chat_model_dir), tmp_path / "b", quantize=quantize)
    second.generate(requests[1])
    after_other = second.generate(requests[0])
    assert after_other.top_logprobs == alone.top_logprobs and first.generate(requests[0]) == alone
