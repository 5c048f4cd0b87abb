"""Several OpenAI-compatible servers of one model (e.g. vLLM replicas) as one backend.

Each request goes to the healthy server with the fewest requests in flight, below that server's own limit. A
server that fails a request (connection error, timeout, 5xx, a broken body) cools down, for a time that doubles
with each failure in a row (COOLDOWN_S up to MAX_COOLDOWN_S), and the request is sent again to another; a 429
cools down that server alone, for its Retry-After where it gives one. A request fails only after
`max_retries` servers failed it, or at once when the server rejects the request itself (a 4xx). Every server
answers with the same weights, so the response cache names the model and not the replica (`identity`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from autointerp_dagster.core.llm.openai_backend import MAX_RETRY_AFTER_S, OpenAIBackend, server_identity
from autointerp_dagster.core.llm.types import (
    BackendError,
    BackendReply,
    ChatRequest,
    PromptScoreReply,
    PromptScoreRequest,
)

log = logging.getLogger(__name__)

COOLDOWN_S = 1.0
MAX_COOLDOWN_S = 30.0


@dataclass
class _Server:
    backend: OpenAIBackend
    limit: int
    in_flight: int = 0
    cooling_until: float = 0.0
    failures_in_a_row: int = 0

    @property
    def url(self) -> str:
        return server_identity(self.backend.base_url)


class ServerPool:
    """A Backend over replicas: least requests in flight among healthy servers, failover and per-server cooldown."""

    name = "openai"

    def __init__(self, servers: Sequence[tuple[str, int]], model: str, api_key_env: str = "OPENAI_API_KEY",
                 timeout_s: float = 60.0, max_retries: int = 5):
        """`servers`: (base_url, requests in flight at most) per replica."""
        if not servers:
            raise ValueError("a server pool needs at least one server")
        # One attempt per server try: the pool decides where a retry goes.
        self._servers = [_Server(OpenAIBackend(url, model, api_key_env, timeout_s, max_retries=0), limit)
                         for url, limit in servers]
        self.model = model
        self.max_retries = max_retries
        self.max_concurrency = sum(limit for _, limit in servers)
        # The same weights answer on every replica, so which one answered is not part of the cache key.
        self.identity = {"backend": self.name, "base_url": "replicas", "model": model}
        self._changed = threading.Condition()

    def __repr__(self) -> str:
        return f"ServerPool({[s.url for s in self._servers]}, model={self.model!r})"

    def generate(self, request: ChatRequest) -> BackendReply:
        return self._route(lambda backend: backend.generate(request))

    def prompt_logprobs(self, request: PromptScoreRequest) -> PromptScoreReply:
        return self._route(lambda backend: backend.prompt_logprobs(request))

    def in_flight(self) -> dict[str, int]:
        with self._changed:
            return {s.url: s.in_flight for s in self._servers}

    def _route(self, call: Callable[[OpenAIBackend], BackendReply | PromptScoreReply]):
        attempts, failures = 0, []
        for _ in range(self.max_retries + 1):
            server = self._acquire()
            try:
                reply = call(server.backend)
            except BackendError as exc:
                attempts += exc.attempts
                self._release(server, exc)
                failures.append(f"{server.url}: {exc.message}")
                if not exc.retryable:  # the request itself is wrong: another server would say the same
                    raise BackendError(failures[-1], attempts) from None
                continue
            self._release(server, None)
            return dataclasses.replace(reply, attempts=attempts + reply.attempts)
        raise BackendError(f"{len(failures)} tries failed; last {failures[-1]}", attempts, retryable=True)

    def _acquire(self) -> _Server:
        """The healthy server with the fewest requests in flight and room for one more; waits for one."""
        with self._changed:
            while True:
                now = time.monotonic()
                ready = [s for s in self._servers if s.cooling_until <= now and s.in_flight < s.limit]
                if ready:
                    server = min(ready, key=lambda s: s.in_flight / s.limit)
                    server.in_flight += 1
                    return server
                cooling = [s.cooling_until - now for s in self._servers if s.cooling_until > now]
                self._changed.wait(timeout=min(cooling) if cooling else None)

    def _release(self, server: _Server, failure: BackendError | None) -> None:
        with self._changed:
            server.in_flight -= 1
            if failure is None:
                server.failures_in_a_row = 0
            elif failure.retryable:
                server.failures_in_a_row += 1
                pause = failure.retry_after
                if pause is None:
                    pause = min(COOLDOWN_S * 2 ** (server.failures_in_a_row - 1), MAX_COOLDOWN_S)
                pause = min(max(pause, 0.0), MAX_RETRY_AFTER_S)
                server.cooling_until = max(server.cooling_until, time.monotonic() + pause)
                log.warning("LLM server %s failed (%s); it rests %.1f s, its requests go to the others",
                            server.url, failure.message, pause)
            self._changed.notify_all()
