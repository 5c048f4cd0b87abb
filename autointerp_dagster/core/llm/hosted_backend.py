"""A step's handle on the machine's judge host (core/llm/judge_host.py): the in-process backend's interface,
its identity and model name, with every request answered by the one process that holds the model.

The first request finds the host through its address file, or starts it (under a file lock, so concurrent
steps start one host between them) and waits until it listens. A host that has gone (killed, or quit when
idle) is started again and the request sent once more: requests are pure functions of their content, so a
repeat answers the same.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from http.client import HTTPException
from pathlib import Path

from autointerp_dagster.core.llm.host_protocol import IDLE_S, decode_reply, encode, host_files
from autointerp_dagster.core.llm.types import (
    BackendError,
    BackendReply,
    ChatRequest,
    PromptScoreReply,
    PromptScoreRequest,
)

START_TIMEOUT_S = 120.0  # a host listens before it loads the model, so this is start-up (imports), not loading


class HostedBackend:
    """`local`: the unloaded in-process backend this stands for (its identity, model and concurrency)."""

    def __init__(self, local, config_json: str, models_dir: str | Path, idle_s: float = IDLE_S):
        self.name, self.model, self.identity = local.name, local.model, local.identity
        self.max_concurrency = local.max_concurrency
        self.models_dir = Path(models_dir)
        self.config_json = config_json
        self.idle_s = idle_s
        self.address, self.lock = host_files(models_dir, self.identity)
        self.log = self.address.with_suffix(".log")
        self._url: str | None = None

    def __repr__(self) -> str:
        return f"HostedBackend(model={self.model!r}, address={str(self.address)!r})"

    def generate(self, request: ChatRequest) -> BackendReply:
        return self._ask("/generate", request)

    def prompt_logprobs(self, request: PromptScoreRequest) -> PromptScoreReply:
        return self._ask("/prompt_logprobs", request)

    def _ask(self, path: str, request):
        for attempt in (1, 2):
            url = self._url or self._find_or_start()
            post = urllib.request.Request(url + path, data=encode(request),
                                          headers={"Content-Type": "application/json"})
            try:  # no timeout: a request waits its turn behind other steps' at the host, and a load takes minutes
                with urllib.request.urlopen(post) as response:
                    return decode_reply(path, json.loads(response.read()))
            except urllib.error.HTTPError as error:  # the host answered: the request failed there
                body = json.loads(error.read())
                raise BackendError(f"judge host: {body['error']}", attempt, retryable=body["retryable"]) from error
            except (urllib.error.URLError, HTTPException, OSError) as error:  # the host went: start another, once
                self._forget(url)
                if attempt == 2:
                    raise BackendError(f"the judge host at {url} failed: {error!r} (its log: {self.log})", attempt,
                                       retryable=True) from error

    def _find_or_start(self) -> str:
        self.address.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one step starts the host; the others wait here and then read it
            url = self._read_address()
            if url is None:
                url = self._start()
        self._url = url
        return url

    def _read_address(self) -> str | None:
        try:
            return json.loads(self.address.read_text())["url"]
        except (OSError, ValueError, KeyError):
            return None

    def _start(self) -> str:
        argv = [sys.executable, "-m", "autointerp_dagster.core.llm.judge_host", "--models-dir", str(self.models_dir),
                "--config", self.config_json, "--idle-s", str(self.idle_s)]
        with open(self.log, "a") as log:  # a new session: the host outlives the step that started it
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            url = self._read_address()
            if url is not None:
                return url
            if process.poll() is not None:
                raise BackendError(f"the judge host exited with {process.returncode} before listening "
                                   f"(its log: {self.log})", 1)
            time.sleep(0.1)
        process.kill()
        raise BackendError(f"the judge host did not listen within {START_TIMEOUT_S:.0f} s (its log: {self.log})", 1)

    def _forget(self, url: str) -> None:
        """Drops the address of a host that did not answer, unless another step already replaced it."""
        self._url = None
        with open(self.lock, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self._read_address() == url:
                self.address.unlink(missing_ok=True)
