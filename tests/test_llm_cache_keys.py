"""What the LLM response cache keys on (the backend's identity), and equal requests of a batch sent once."""

from __future__ import annotations

import os
import shutil

from autointerp_dagster.core.llm import LLMClient, LocalBackend, OpenAIBackend
from tests.openai_stub_server import StubLLMServer
from tests.test_llm_client import _backend, _calls, _request, server, tiny_chat_model_dir  # noqa: F401 (fixtures)


def test_servers_with_the_same_model_name_do_not_share_answers(store):
    with StubLLMServer(reply="from a") as a, StubLLMServer(reply="from b") as b:
        [first] = LLMClient(_backend(a), store).complete([_request("p")])
        [second] = LLMClient(_backend(b), store).complete([_request("p")])
        [again] = LLMClient(OpenAIBackend(b.base_url + "/", "stub-model"), store).complete([_request("p")])
    assert (first.text, second.text) == ("from a", "from b")
    assert not second.cached and b.call_count == 1
    assert again.cached and again.text == "from b"  # a trailing slash names the same server


def test_server_identity_keeps_no_credentials():
    backend = OpenAIBackend("HTTPS://user:s3cret@Example.COM:8443/v1/?key=s3cret", "m")
    assert backend.identity == {"backend": "openai", "base_url": "https://example.com:8443/v1", "model": "m"}


def test_local_identity_follows_settings_and_files_without_loading(tiny_chat_model_dir, tmp_path):  # noqa: F811 (fixture)
    def identity(folder=tiny_chat_model_dir, **settings):
        backend = LocalBackend(str(folder), tmp_path / "models", **settings)
        assert backend._model is None  # computed without loading
        return backend.identity

    cpu = identity(device="cpu", quantize="none")
    assert cpu == identity(device="cpu", quantize="none")
    assert cpu["path"] == str(tiny_chat_model_dir.resolve())
    others = [identity(device="cpu", quantize="int8"), identity(device="cuda", dtype="float32"),
              identity(device="cpu", dtype="bfloat16"), identity(device="cpu", quantize="none", max_context=256)]
    assert len({repr(i) for i in [cpu, *others]}) == 5

    copy = shutil.copytree(tiny_chat_model_dir, tmp_path / tiny_chat_model_dir.name)  # same name, other files
    copied = identity(copy, device="cpu", quantize="none")
    assert copied != cpu
    weights = copy / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert identity(copy, device="cpu", quantize="none") != copied


def test_embedded_identity_needs_no_assembly(tmp_path):
    backend = LocalBackend("embedded:qwen2.5-coder-1.5b-instruct", tmp_path / "models", device="cpu")
    assert backend.identity["embedded"] == "qwen2.5-coder-1.5b-instruct" and backend.identity["version"]
    assert not (tmp_path / "models").exists()


def test_local_answers_are_not_shared_across_quantisation(tiny_chat_model_dir, store, tmp_path):  # noqa: F811 (fixture)
    def run(quantize):
        backend = LocalBackend(str(tiny_chat_model_dir), tmp_path / "models", device="cpu", quantize=quantize)
        [result] = LLMClient(backend, store).complete([_request("the cat", max_tokens=2)])
        return result

    assert not run("none").cached
    assert not run("int8").cached
    assert run("none").cached


def test_equal_requests_in_a_batch_are_sent_once(server, store):  # noqa: F811 (fixture)
    progress = []
    requests = [_request("p"), _request("q"), _request("p", purpose="again"), _request("p")]
    results = LLMClient(_backend(server), store, concurrency=4).complete(
        requests, on_progress=lambda done, total: progress.append((done, total)))
    assert server.call_count == 2
    assert [r.text for r in results] == ["echo p", "echo q", "echo p", "echo p"]
    assert len({id(r) for r in results}) == 4  # each position its own result ...
    assert results[0].call_id == results[2].call_id == results[3].call_id != results[1].call_id  # ... of one call
    assert not any(r.cached for r in results)
    assert progress[-1] == (4, 4) and len(progress) == 2
    assert sorted(c["call_id"] for c in _calls(store)) == sorted({r.call_id for r in results})

    again = LLMClient(_backend(server), store).complete(requests)  # from the cache: one log row per answer
    assert server.call_count == 2 and all(r.cached for r in again)
    assert [r.text for r in again] == [r.text for r in results]
    assert [c["status"] for c in _calls(store)].count("cached") == 2

