"""Shared fixtures: a tiny real Hugging Face model and tokenizer built offline, tiny SAEs, a project home."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _train_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<eos>", "<bos>", "<unk>"])
    tokenizer.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 3-layer Gemma 3 model (random weights, 64-wide) and a BPE tokenizer trained on the embedded corpus."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from autointerp_dagster.core.models.embedded import kjv_documents

    folder = tmp_path_factory.mktemp("tiny-gemma")
    docs = [doc for _, doc in zip(range(60), kjv_documents())]
    tokenizer = _train_tokenizer(docs)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=96, num_hidden_layers=3,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        sliding_window=64,
    )
    torch.manual_seed(0)
    Gemma3ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_sparsify_sae(folder: Path, d_in: int, num_latents: int, k: int, seed: int, transcode: bool = False) -> Path:
    """Saves a randomly initialised sparsify TopK SAE in sparsify's own format."""
    from sparsify import SparseCoder, SparseCoderConfig

    torch.manual_seed(seed)
    sae = SparseCoder(d_in, SparseCoderConfig(num_latents=num_latents, k=k, transcode=transcode))
    with torch.no_grad():
        sae.encoder.bias.uniform_(-0.05, 0.05)
        sae.W_dec.normal_()
    sae.save_to_disk(folder)
    return folder


@pytest.fixture
def store(tmp_path):
    """A results store on a real DuckDB file."""
    from autointerp_dagster.core.store import ResultsStore

    return ResultsStore(tmp_path / "results.duckdb")


def _example_lines(content: str) -> list[str]:
    return [line for line in content.splitlines() if re.match(r"Example \d+:", line)]


def scripted_judge(messages: list[dict]):
    """An LLM stand-in that explains every latent as LORD/God and judges by that rule.

    Its first explanation answer is unparseable, and so is the answer to its retry, so one
    latent of a run gets a recorded explanation failure.
    """
    from .openai_stub_server import StubReply

    system, user = messages[0]["content"], messages[-1]["content"]
    if "[EXPLANATION]" in system:
        if any("cannot tell" in m["content"] for m in messages if m["role"] == "assistant"):
            return "Sorry, I still cannot tell."
        if not scripted_judge.failed_once:
            scripted_judge.failed_once = True
            return "I cannot tell what these have in common."
        return "Most examples mention the deity.\n[EXPLANATION]: the words LORD and God"
    if "the intruder" in system:  # the window on the other side of the LORD/God rule from the rest
        windows = [line.split(":", 1)[1] for line in user.splitlines() if line.startswith("Window ")]
        divine = [("LORD" in w or "God" in w) for w in windows]
        majority = sum(divine) * 2 > len(divine)
        return f"Intruder: {next((i for i, d in enumerate(divine) if d != majority), 0) + 1}"
    if "Answer with one word: Yes or No" in system:
        text = user.split("Text:", 1)[1]
        yes = "LORD" in text or "God" in text
        return StubReply("Yes" if yes else "No", [{"Yes": -0.1 if yes else -2.5, "No": -2.5 if yes else -0.1}])
    lines = _example_lines(user)
    return json.dumps([int("LORD" in line or "God" in line) for line in lines])


scripted_judge.failed_once = False


def run_on_scripted_judge(config: Path, server) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    """`autointerp run` from inputs to summary of the settings file `config`, judged by the scripted judge on
    `server` (no subject-model scorers), in an environment without other AUTOINTERP_* variables; and the
    AUTOINTERP_* variables it ran with."""
    variables = {"AUTOINTERP_CONFIG": str(config), "AUTOINTERP_LLM_BACKEND": "openai",
                 "AUTOINTERP_LLM_BASE_URL": server.base_url, "AUTOINTERP_LLM_MODEL": "scripted-judge",
                 "AUTOINTERP_SUBJECT_SCORERS_SCORERS": "[]"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOINTERP_") and k != "DAGSTER_HOME"}
    stages = [arg for stage in ("inputs", "cache", "explain", "score", "summary") for arg in ("--stage", stage)]
    done = subprocess.run([str(Path(sys.executable).with_name("autointerp")), "run", *stages],
                          env={**env, **variables}, capture_output=True, text=True)
    return done, variables


@pytest.fixture
def llm_server(monkeypatch):
    """The scripted judge on a real HTTP server, which the pipeline reaches through AUTOINTERP_LLM_* variables.

    The first two requests fail (500, then 429), so every run exercises the client's retries.
    """
    from .openai_stub_server import Fault, StubLLMServer

    scripted_judge.failed_once = False
    with StubLLMServer(reply=scripted_judge) as server:
        server.enqueue(Fault.server_error(500), Fault.rate_limit(retry_after=0.05))
        monkeypatch.setenv("AUTOINTERP_LLM_BACKEND", "openai")
        monkeypatch.setenv("AUTOINTERP_LLM_BASE_URL", server.base_url)
        monkeypatch.setenv("AUTOINTERP_LLM_MODEL", "scripted-judge")
        monkeypatch.setenv("AUTOINTERP_LLM_TIMEOUT_S", "10")
        yield server


@pytest.fixture
def project(tmp_path, tiny_model_dir, llm_server, monkeypatch):
    """A project home with settings on the tiny model, the embedded corpus (small budget), three SAEs,
    small example sets, and the scripted judge.

    Two SAEs share hookpoint layers.1 (run names `run-a`, `run-b`), one reads layers.0.
    """
    home = tmp_path / "home"
    sae_dir = home / "saes"
    write_sparsify_sae(sae_dir / "run-a" / "layers.0", 64, 96, 4, seed=1)
    write_sparsify_sae(sae_dir / "run-a" / "layers.1", 64, 128, 4, seed=2)
    write_sparsify_sae(sae_dir / "run-b" / "layers.1", 64, 80, 3, seed=3)
    config = {
        "model": {"name": str(tiny_model_dir), "alias": "tiny"},
        "corpus": {"source": "embedded:kjv", "ctx_len": 32, "token_budget": 32 * 40},
        "coders": {"embedded": None},
        "cache": {"batch_rows": 8},
        "sampling": {"example_ctx_len": 8, "peak_index": 5, "min_activating": 4, "n_train": 6, "n_test": 6,
                     "n_quantiles": 3, "n_random_negatives": 6, "n_hard_negatives": 3, "hard_negative_queries": 2,
                     "negatives": "random+hard"},
        "scoring": {"batch_size": 3},
    }
    config_file = tmp_path / "autointerp.yaml"
    config_file.write_text(json.dumps(config))
    monkeypatch.setenv("AUTOINTERP_HOME", str(home))
    monkeypatch.setenv("AUTOINTERP_CONFIG", str(config_file))
    from autointerp_dagster.core.config import load_settings

    return load_settings()


def start_ui(env: dict[str, str], timeout_s: float = 600, **popen) -> tuple[subprocess.Popen, int]:
    """`autointerp ui` on a free port of 127.0.0.1, in its own session (stop it with os.killpg), once its
    webserver answers: (process, port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ui = subprocess.Popen([str(Path(sys.executable).with_name("autointerp")), "ui", "--port", str(port)], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, **popen)
    deadline = time.monotonic() + timeout_s
    try:
        while not _ui_answers(port):  # the instance is opened once Dagster made its storage
            assert time.monotonic() < deadline and ui.poll() is None, "autointerp ui did not start"
            time.sleep(0.5)
    except BaseException:
        if ui.poll() is None:
            os.killpg(ui.pid, signal.SIGKILL)  # a UI that never answered is not left behind
        raise
    return ui, port


def _ui_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False
