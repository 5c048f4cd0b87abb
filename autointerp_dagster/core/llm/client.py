"""Runs batches of chat requests against any backend: in parallel, cached, logged, never raising.

Explainers and scorers hand over thousands of prompts at once; a single failed prompt
must not sink the batch, and a re-run after a crash must not pay again for answers it
already has. Requests with equal cache keys in one batch are one request: answered once
(from the cache or one call, one `llm_calls` row), and every position gets a copy of that
answer. Workers only talk to the backend; the calling thread does all DuckDB work
(cache lookup up front, cache and log rows in batches as results arrive, the rest in a
`finally`), so no connection is held while a request is in flight.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace

from autointerp_dagster.core.llm.records import (
    CallRecord,
    Journal,
    LLMRecords,
    cache_key,
    prompt_score_key,
)
from autointerp_dagster.core.llm.types import (
    CACHED,
    ERROR,
    OK,
    Backend,
    BackendError,
    BackendReply,
    ChatRequest,
    ChatResult,
    PromptScoreReply,
    PromptScoreRequest,
    PromptScoreResult,
    supports_prompt_logprobs,
)
from autointerp_dagster.core.store import ResultsStore

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]  # (requests done, requests total)


def offset_progress(on_progress: ProgressCallback | None, offset: int) -> ProgressCallback | None:
    """Progress of a later batch (retries) counted on after the `offset` requests of earlier ones."""
    if on_progress is None:
        return None
    return lambda done, total: on_progress(offset + done, offset + total)


class LLMClient:
    def __init__(
        self,
        backend: Backend,
        store: ResultsStore | None = None,
        concurrency: int = 8,
        use_cache: bool = True,
        flush_every: int = 64,
        flush_interval_s: float = 2.0,
    ):
        """`store` None keeps nothing (no cache, no call log); `use_cache` False still logs."""
        self.backend = backend
        self.records = LLMRecords(store) if store is not None else None
        self.concurrency = max(1, min(concurrency, backend.max_concurrency or concurrency))
        self.use_cache = use_cache and store is not None
        self.flush_every = flush_every
        self.flush_interval_s = flush_interval_s

    def complete(
        self, requests: list[ChatRequest], on_progress: ProgressCallback | None = None
    ) -> list[ChatResult]:
        """Answers in the order of `requests`; failures come back as status "error"."""
        identity = self.backend.identity
        return self._run(requests, lambda r: cache_key(identity, r), self.backend.generate, _CHAT, on_progress)

    def score_prompts(
        self, requests: list[PromptScoreRequest], on_progress: ProgressCallback | None = None
    ) -> list[PromptScoreResult]:
        """Candidate logprobs inside prompts (see PromptScoreRequest), cached and logged like chat answers.

        Raises ValueError for a backend that cannot read logprobs inside a prompt (a chat-only API)."""
        if not supports_prompt_logprobs(self.backend):
            raise ValueError(f"{self.backend.name} backend {self.backend.model!r} cannot return logprobs inside a "
                             "prompt (it needs an in-process model or a completions endpoint with echo)")
        identity = self.backend.identity
        return self._run(requests, lambda r: prompt_score_key(identity, r), self.backend.prompt_logprobs,
                         _PROMPT_SCORE, on_progress)

    def _run(self, requests: list, key_of: Callable, call: Callable, kind: _Kind,
             on_progress: ProgressCallback | None) -> list:
        positions: dict[str, list[int]] = {}  # cache key -> where its requests are, in request order
        for i, request in enumerate(requests):
            positions.setdefault(key_of(request), []).append(i)
        results: list = [None] * len(requests)
        done = 0
        batch = _PendingRows(self.records)
        journal = self.records.journal() if self.records is not None else None
        try:
            hits = self.records.lookup(list(positions)) if self.use_cache else {}
            for key, where in positions.items():
                if key in hits:
                    result = self._from_cache(requests[where[0]], key, kind.reply(**hits[key]), kind, batch)
                    done += _fill(results, where, result)
            if done and on_progress:
                on_progress(done, len(requests))
            todo = [key for key in positions if key not in hits]
            with _Pool(min(self.concurrency, max(len(todo), 1))) as pool:
                running = {pool.submit(self._call, call, requests[positions[key][0]]): key for key in todo}
                last_flush = time.monotonic()
                while running:
                    finished, _ = wait(running, timeout=self.flush_interval_s, return_when=FIRST_COMPLETED)
                    for future in finished:
                        key = running.pop(future)
                        where = positions[key]
                        result = self._record(requests[where[0]], key, *future.result(), kind, batch, journal)
                        done += _fill(results, where, result)
                        if on_progress:
                            on_progress(done, len(requests))
                    if len(batch) >= self.flush_every or time.monotonic() - last_flush >= self.flush_interval_s:
                        batch.flush()
                        last_flush = time.monotonic()
        finally:
            batch.flush()
            if journal is not None:  # only once its rows are in the tables (a failed flush keeps it)
                journal.discard()
        return results

    def _call(self, call: Callable, request) -> tuple[object | None, str | None, int, float]:
        """Runs in a worker: (reply, error, attempts, seconds); never raises."""
        start = time.perf_counter()
        try:
            reply = call(request)
            return reply, None, reply.attempts, time.perf_counter() - start
        except BackendError as exc:
            return None, exc.message, exc.attempts, time.perf_counter() - start
        except Exception as exc:  # a backend bug must fail one request, not the batch
            return None, f"{type(exc).__name__}: {exc}", 1, time.perf_counter() - start

    def _record(self, request, key: str, reply, error: str | None, attempts: int, latency_s: float,
                kind: _Kind, batch: _PendingRows, journal: Journal | None):
        if reply is None:
            log.warning("LLM request failed (%s) after %d attempts: %s", request.purpose or "-", attempts, error)
        result = kind.result(reply, error, latency_s, False)
        response = None
        if reply is not None and self.use_cache:
            response = (key, self.backend.model, {k: v for k, v in vars(reply).items() if k != "attempts"})
            batch.responses.append(response)
        call = self._log_row(result, request, key, attempts)
        batch.calls.append(call)
        if journal is not None:
            journal.append(response, call)
        return result

    def _from_cache(self, request, key: str, reply, kind: _Kind, batch: _PendingRows):
        result = kind.result(reply, None, 0.0, True)
        batch.calls.append(self._log_row(result, request, key, attempts=0, status=CACHED))
        return result

    def _log_row(self, result, request, key: str, attempts: int, status: str | None = None) -> CallRecord:
        return CallRecord.now(
            call_id=result.call_id,
            backend=self.backend.name,
            model=self.backend.model,
            purpose=request.purpose,
            prompt_hash=key,
            tokens_in=result.tokens_in,
            tokens_out=getattr(result, "tokens_out", 0),
            latency_s=result.latency_s,
            attempts=attempts,
            status=status or result.status,
            error=result.error,
        )


@dataclass(frozen=True)
class _Kind:
    """What differs between chat answers and prompt logprobs: the reply type (also read back from the cache)
    and how a reply, or its absence, becomes a result."""

    reply: type
    result: Callable


def _chat_result(reply: BackendReply | None, error: str | None, latency_s: float, cached: bool) -> ChatResult:
    return ChatResult(
        text=reply.text if reply else None, status=OK if reply else ERROR, error=error,
        top_logprobs=reply.top_logprobs if reply else None, tokens_in=reply.tokens_in if reply else 0,
        tokens_out=reply.tokens_out if reply else 0, latency_s=latency_s, cached=cached, call_id=uuid.uuid4().hex)


def _prompt_score_result(reply: PromptScoreReply | None, error: str | None, latency_s: float,
                         cached: bool) -> PromptScoreResult:
    return PromptScoreResult(
        logprobs=reply.logprobs if reply else None, status=OK if reply else ERROR, error=error,
        tokens_in=reply.tokens_in if reply else 0, latency_s=latency_s, cached=cached, call_id=uuid.uuid4().hex)


_CHAT = _Kind(BackendReply, _chat_result)
_PROMPT_SCORE = _Kind(PromptScoreReply, _prompt_score_result)


def _fill(results: list, where: list[int], result) -> int:
    """Puts `result` at the first of `where` and a copy at each other position; returns how many."""
    results[where[0]] = result
    for i in where[1:]:
        results[i] = replace(result)
    return len(where)


class _PendingRows:
    """Cache and log rows not yet written; flushed by the calling thread only."""

    def __init__(self, records: LLMRecords | None):
        self.records = records
        self.responses: list[tuple[str, str, dict]] = []
        self.calls: list[CallRecord] = []

    def __len__(self) -> int:
        return len(self.calls)

    def flush(self) -> None:
        if self.records is not None:
            self.records.write(self.responses, self.calls)
        self.responses, self.calls = [], []


class _Pool(ThreadPoolExecutor):
    """A thread pool that, when the caller is interrupted, drops queued work instead of running it."""

    def __init__(self, workers: int):
        super().__init__(max_workers=workers, thread_name_prefix="llm")

    def __exit__(self, exc_type, exc, tb):
        self.shutdown(wait=exc_type is None, cancel_futures=True)
        return False
