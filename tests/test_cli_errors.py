"""Errors a person can read: a mistake in the inputs is one paragraph on stderr and exit status 2, found before
the first step runs; `--debug` adds the traceback. Each case runs the real `autointerp` command."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import write_sparsify_sae
from .openai_stub_server import StubLLMServer


@pytest.fixture
def home(tmp_path, tiny_model_dir):
    """A project on the tiny model with one good SAE in the watched folder; each test adds what is wrong."""
    home = tmp_path / "home"
    write_sparsify_sae(home / "saes" / "run-a" / "layers.1", 64, 96, 4, seed=1)
    return home


def autointerp(home: Path, config: dict, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    coders = {"embedded": None, **config.pop("coders", {})}
    settings = {"model": {"name": str(config.pop("model")), "alias": "tiny"}, "coders": coders,
                "corpus": {"ctx_len": 32, "token_budget": 32 * 20}, **config}
    path = home.parent / "settings.yaml"
    path.write_text(json.dumps(settings))
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AUTOINTERP_") and k != "DAGSTER_HOME"}
    environ.update({"AUTOINTERP_HOME": str(home), **(env or {})})
    command = [str(Path(sys.executable).with_name("autointerp")), "--config", str(path), *args]
    return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=300)


def judge_env(server: StubLLMServer) -> dict[str, str]:
    return {"AUTOINTERP_LLM_BACKEND": "openai", "AUTOINTERP_LLM_BASE_URL": server.base_url,
            "AUTOINTERP_LLM_MODEL": "judge", "AUTOINTERP_LLM_TIMEOUT_S": "5"}


def assert_one_paragraph(done: subprocess.CompletedProcess, *phrases: str) -> None:
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr + done.stdout
    assert "inputs_job" not in done.stdout, "a step ran before the inputs were checked"
    for phrase in phrases:
        assert phrase in done.stderr, done.stderr


@pytest.fixture
def server():
    with StubLLMServer(reply="Yes", models=("judge",)) as server:
        yield server


def test_a_missing_sae_path_is_one_paragraph(home, tiny_model_dir, server):
    missing = str(home.parent / "nowhere" / "layers.1")
    done = autointerp(home, {"model": tiny_model_dir, "coders": {"paths": [missing]}}, "run", env=judge_env(server))
    assert_one_paragraph(done, f"sparse coder path {missing!r} does not exist")


def test_a_hookpoint_the_model_lacks_is_found_before_any_step(home, tiny_model_dir, server):
    sae = write_sparsify_sae(home.parent / "elsewhere" / "layers.1", 64, 96, 4, seed=2)
    coders = {"paths": [{"path": str(sae), "hookpoint": "layers.9"}]}
    done = autointerp(home, {"model": tiny_model_dir, "coders": coders}, "run", env=judge_env(server))
    assert_one_paragraph(done, "hookpoint 'layers.9' is not a module of", "layers.N  (N in 0..2)")
    assert "1 problem(s) found before anything ran" in done.stderr


def test_an_sae_of_another_width_is_found_before_any_step(home, tiny_model_dir, server):
    write_sparsify_sae(home / "saes" / "narrow" / "layers.0", 32, 64, 4, seed=3)
    done = autointerp(home, {"model": tiny_model_dir}, "run", env=judge_env(server))
    assert_one_paragraph(done, "tiny/layers.0/narrow: the coder reads vectors of width 32", "has width 64")


def test_an_unreachable_judge_is_found_before_any_step(home, tiny_model_dir):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"AUTOINTERP_LLM_BACKEND": "openai", "AUTOINTERP_LLM_BASE_URL": f"http://127.0.0.1:{port}/v1"}
    done = autointerp(home, {"model": tiny_model_dir}, "run", env=env)
    assert_one_paragraph(done, f"the judge at http://127.0.0.1:{port}/v1 cannot be reached", "llm.base_url")


def test_a_missing_key_names_its_variable(home, tiny_model_dir):
    with StubLLMServer(reply="Yes", api_key="sk-test") as server:
        done = autointerp(home, {"model": tiny_model_dir}, "run", env=judge_env(server))
        assert_one_paragraph(done, "refused the request (401)", "$OPENAI_API_KEY", "it is not set")
        keyed = autointerp(home, {"model": tiny_model_dir}, "config", env={**judge_env(server),
                                                                           "OPENAI_API_KEY": "sk-test"})
        assert keyed.returncode == 0 and "sk-test" not in keyed.stdout  # the key is never shown


def test_debug_shows_the_traceback_and_settings_errors_stay_one_paragraph(home, tiny_model_dir, server):
    missing = str(home.parent / "nowhere")
    done = autointerp(home, {"model": tiny_model_dir, "coders": {"paths": [missing]}}, "--debug", "run",
                      env=judge_env(server))
    assert done.returncode == 2 and "Traceback" in done.stderr and "does not exist" in done.stderr
    bad = autointerp(home, {"model": tiny_model_dir, "coders": {"latent_ranges": 0}}, "config")
    assert bad.returncode == 2 and "coders.latent_ranges" in bad.stderr and "Traceback" not in bad.stderr
