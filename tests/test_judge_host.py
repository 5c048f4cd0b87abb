"""`llm.share_local`: step processes share one judge host that loads the in-process model once, answers as the
in-process backend would (so cache keys and answers are those of `make run`), survives being killed and quits
when idle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from autointerp_dagster.core.config import LLMConfig
from autointerp_dagster.core.llm import ChatRequest, build_backend
from autointerp_dagster.core.llm.host_protocol import LISTENING, host_files
from autointerp_dagster.core.llm.hosted_backend import HostedBackend
from autointerp_dagster.core.llm.types import BackendError, PromptScoreRequest
from tests.test_llm_client import tiny_chat_model_dir  # noqa: F401 (fixture)

REQUEST = ChatRequest([{"role": "system", "content": "explain the latent"},
                       {"role": "user", "content": "the cat sat on the mat"}],
                      max_tokens=4, logprobs=True, top_logprobs=5)

# One step process: builds the backend from the settings and asks one question, as an explanation step would.
STEP = """
import json, sys
from autointerp_dagster.core.config import LLMConfig
from autointerp_dagster.core.llm import build_backend
from autointerp_dagster.core.llm.host_protocol import encode
from tests.test_judge_host import REQUEST
backend = build_backend(LLMConfig.model_validate_json(sys.argv[1]), sys.argv[2])
print(encode(backend.generate(REQUEST)).decode())
"""


@pytest.fixture
def config(tiny_chat_model_dir):  # noqa: F811 (fixture)
    return LLMConfig(model=str(tiny_chat_model_dir), max_context=256, share_local=True)


@pytest.fixture
def models_dir(tmp_path, config):
    folder = tmp_path / "models"
    yield folder
    for address in (folder / "judge-hosts").glob("*.json"):  # leave no host behind
        try:
            os.kill(json.loads(address.read_text())["pid"], signal.SIGKILL)
        except (OSError, ValueError):
            pass


def gone(path, within_s: float = 30) -> bool:
    """Whether `path` disappears within `within_s` (a host removes its address file as it quits)."""
    deadline = time.monotonic() + within_s
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return not path.exists()


def host_pid(backend: HostedBackend) -> int:
    return json.loads(backend.address.read_text())["pid"]


def test_step_processes_share_one_host_that_answers_as_the_in_process_judge(config, models_dir):
    steps = [subprocess.Popen([sys.executable, "-c", STEP, config.model_dump_json(), str(models_dir)],
                              stdout=subprocess.PIPE, text=True, cwd=os.getcwd()) for _ in range(3)]
    answers = [json.loads(step.communicate(timeout=300)[0]) for step in steps]
    assert all(step.returncode == 0 for step in steps)
    local = build_backend(config.model_copy(update={"share_local": False}), models_dir)
    hosted = build_backend(config, models_dir)
    assert isinstance(hosted, HostedBackend) and hosted.identity == local.identity  # one response cache for both
    expected = local.generate(REQUEST)
    for answer in answers + [json.loads(json.dumps(hosted.generate(REQUEST).__dict__))]:
        assert answer["text"] == expected.text and answer["tokens_out"] == expected.tokens_out
        for got, want in zip(answer["top_logprobs"], expected.top_logprobs, strict=True):
            assert got.keys() == want.keys() and all(got[t] == pytest.approx(want[t], abs=1e-5) for t in want)
    hosts = list((models_dir / "judge-hosts").glob("*.json"))
    assert len(hosts) == 1, "three steps started more than one host"
    log = hosted.log.read_text()
    assert log.count(LISTENING) == 1, log
    scored = PromptScoreRequest("the cat sat on the mat", (3, 7), ("cat", "sat"))
    got, want = hosted.prompt_logprobs(scored).logprobs, local.prompt_logprobs(scored).logprobs
    assert any(want) and [g and g.keys() for g in got] == [w and w.keys() for w in want]
    assert all(g[c] == pytest.approx(w[c], abs=1e-5) for g, w in zip(got, want, strict=True) if w for c in w)


def test_a_killed_host_is_replaced_and_the_request_answered(config, models_dir):
    backend = build_backend(config, models_dir)
    first = backend.generate(REQUEST)
    killed = host_pid(backend)
    os.kill(killed, signal.SIGKILL)
    time.sleep(0.5)
    assert backend.generate(REQUEST).text == first.text
    assert host_pid(backend) != killed


def test_a_request_the_model_refuses_is_a_backend_error_not_a_lost_host(config, models_dir):
    backend = build_backend(config, models_dir)
    too_long = ChatRequest([{"role": "user", "content": "the cat sat on the mat " * 100}], max_tokens=4)
    with pytest.raises(BackendError, match="context") as refused:
        backend.generate(too_long)
    assert not refused.value.retryable
    pid = host_pid(backend)
    backend.generate(REQUEST)
    assert host_pid(backend) == pid


def test_an_idle_host_quits_and_the_next_request_starts_another(config, models_dir):
    local = build_backend(config.model_copy(update={"share_local": False}), models_dir)
    backend = HostedBackend(local, config.model_dump_json(), models_dir, idle_s=1.0)
    backend.generate(REQUEST)
    pid = host_pid(backend)
    assert gone(backend.address), "the idle host kept its address file"
    assert host_files(models_dir, local.identity)[0] == backend.address
    backend.generate(REQUEST)
    assert host_pid(backend) != pid
    os.kill(host_pid(backend), signal.SIGTERM)  # stopped: it removes its address file as when idle
    assert gone(backend.address), "a host stopped by SIGTERM kept its address file"


def test_the_ui_shares_an_in_process_judge_unless_the_settings_say_otherwise():
    from autointerp_dagster.cli import ui_environment
    from autointerp_dagster.core.config import load_settings, load_settings_with_sources

    environment = ui_environment(*load_settings_with_sources(environ={}))
    assert load_settings(environ=environment).llm.share_local  # what the daemon's step processes read
    assert ui_environment(*load_settings_with_sources(environ={"AUTOINTERP_LLM_SHARE_LOCAL": "false"})) == {}
    assert ui_environment(*load_settings_with_sources(environ={"AUTOINTERP_LLM_BACKEND": "openai"})) == {}
