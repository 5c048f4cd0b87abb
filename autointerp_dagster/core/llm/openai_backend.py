"""An OpenAI-compatible chat-completions server as a backend (vLLM, llama.cpp, OpenRouter, OpenAI).

The SDK's own retries are off: this module retries itself so that every attempt is
counted for the call log, Retry-After is obeyed, malformed bodies are retried too, and
a server that rejects logprobs is remembered instead of failing every scoring call.
The API key is read from the environment, passed to the SDK only, and scrubbed from
every error message, so it cannot reach logs or the results store.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

import openai
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from autointerp_dagster.core.llm.types import (
    BackendError,
    BackendReply,
    ChatRequest,
    PromptScoreReply,
    PromptScoreRequest,
)

log = logging.getLogger(__name__)

_RETRYABLE_STATUS = {408, 429}  # plus every 5xx
MAX_RETRY_AFTER_S = 300.0  # beyond this a Retry-After is treated as "give up soon", not obeyed
PROMPT_TOP_LOGPROBS = 20  # alternatives per prompt token; vLLM's default cap (max_logprobs)


class _MalformedResponse(Exception):
    """A 2xx whose body is not a usable chat completion."""


class OpenAIBackend:
    name = "openai"
    max_concurrency: int | None = None

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 60.0,
        max_retries: int = 5,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 30.0,
    ):
        self.base_url = base_url
        self.model = model
        self.identity = {"backend": self.name, "base_url": server_identity(base_url), "model": model}
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        # Full jitter (a uniform draw below the capped exponential) spreads out workers
        # that hit the same rate limit at once.
        self._backoff = wait_random_exponential(multiplier=backoff_base_s, max=backoff_max_s)
        api_key = os.environ.get(api_key_env) or ""
        self._secrets = [api_key] if api_key else []
        self._client = openai.OpenAI(
            base_url=base_url, api_key=api_key or "EMPTY", timeout=timeout_s, max_retries=0
        )
        self._logprobs_supported = True
        self._flag_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenAIBackend(base_url={self.base_url!r}, model={self.model!r})"

    def generate(self, request: ChatRequest) -> BackendReply:
        attempts = 0

        def send() -> BackendReply:
            nonlocal attempts
            attempts += 1
            with_logprobs = request.logprobs and self._logprobs_supported
            try:
                return self._attempt(request, with_logprobs, attempts)
            except openai.APIStatusError as exc:
                if not (with_logprobs and _rejects_logprobs(exc)):
                    raise
            # Asking again without logprobs is a change of request, not a retry.
            with self._flag_lock:
                if self._logprobs_supported:
                    log.warning("%s rejects logprobs; continuing without them", self.base_url)
                self._logprobs_supported = False
            return send()

        return self._retried(send, lambda: attempts)

    def prompt_logprobs(self, request: PromptScoreRequest) -> PromptScoreReply:
        """The legacy completions endpoint with `echo` and `logprobs` (vLLM turns these into prompt logprobs):
        the top PROMPT_TOP_LOGPROBS alternatives of every prompt token, each token's `text_offset`, and one
        generated token, which is ignored. Candidates outside the top alternatives are absent (probability ~0,
        as in OpenAI's simulator); a chat-only API answers 404 and the request fails with that error."""
        attempts = 0

        def send() -> PromptScoreReply:
            nonlocal attempts
            attempts += 1
            payload = {"model": self.model, "prompt": request.prompt, "max_tokens": 1, "temperature": 0.0,
                       "echo": True, "logprobs": PROMPT_TOP_LOGPROBS}
            body = json.loads(self._client.post("/completions", body=payload, cast_to=str))
            try:
                logprobs = body["choices"][0]["logprobs"]
                offsets, tops = logprobs["text_offset"], logprobs["top_logprobs"]
            except (KeyError, IndexError, TypeError) as exc:
                raise _MalformedResponse(
                    f"no choices[0].logprobs with text_offset and top_logprobs ({exc!r})") from None
            at = {int(offset): i for i, offset in enumerate(offsets) if i > 0 and offset < len(request.prompt)}
            wanted = set(request.candidates)
            found = [None if (i := at.get(offset)) is None or tops[i] is None
                     else {t: float(lp) for t, lp in tops[i].items() if t in wanted} for offset in request.offsets]
            usage = body.get("usage") or {}
            return PromptScoreReply(found, tokens_in=int(usage.get("prompt_tokens") or len(offsets)), attempts=attempts)

        return self._retried(send, lambda: attempts)

    def _retried(self, send, attempts):
        """`send()` with retries on retryable errors; anything that escapes is a scrubbed BackendError."""
        retrying = Retrying(
            retry=retry_if_exception(_is_retryable),
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(send)
        except Exception as exc:  # nothing escapes unscrubbed
            raise BackendError(self._redact(self._describe(exc)), attempts(), _is_retryable(exc),
                               _retry_after(exc)) from None

    def _wait(self, state: RetryCallState) -> float:
        """The server's Retry-After when given (it knows when capacity returns), else back-off."""
        retry_after = _retry_after(state.outcome.exception())
        if retry_after is not None:
            return min(max(retry_after, 0.0), MAX_RETRY_AFTER_S)
        return self._backoff(state)

    def _log_retry(self, state: RetryCallState) -> None:
        message = self._redact(self._describe(state.outcome.exception()))
        log.info("LLM call failed (%s); retry %d/%d in %.2fs",
                 message, state.attempt_number, self.max_retries, state.next_action.sleep)

    def _attempt(self, request: ChatRequest, with_logprobs: bool, attempts: int) -> BackendReply:
        payload = {
            "model": self.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.stop:
            payload["stop"] = list(request.stop)
        if request.sample:
            payload["seed"] = request.sample
        if with_logprobs:
            payload["logprobs"] = True
            if request.top_logprobs:
                payload["top_logprobs"] = request.top_logprobs
        # The SDK's status handling and transport, but the body parsed here: the typed
        # `chat.completions.create` costs more client time than a fast server takes, and
        # servers differ in the optional fields they fill.
        body = json.loads(self._client.post("/chat/completions", body=payload, cast_to=str))
        try:
            choice = body["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise _MalformedResponse(f"no choices[0].message.content ({exc!r})") from None
        usage = body.get("usage") or {}
        return BackendReply(
            text=text,
            top_logprobs=_top_logprobs(choice) if with_logprobs else None,
            tokens_in=int(usage.get("prompt_tokens") or 0),
            tokens_out=int(usage.get("completion_tokens") or 0),
            attempts=attempts,
        )

    def _describe(self, exc: Exception) -> str:
        if isinstance(exc, openai.APITimeoutError):
            return f"timed out after {self.timeout_s:g}s"
        if isinstance(exc, openai.APIConnectionError):
            return f"connection error: {exc.__cause__ or exc}"
        if isinstance(exc, openai.APIStatusError):
            body = exc.body if isinstance(exc.body, dict) else {}
            return f"HTTP {exc.status_code}: {body.get('message') or exc.message}"
        if _is_malformed(exc):
            return f"malformed response: {type(exc).__name__}: {exc}"
        return f"{type(exc).__name__}: {exc}"

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text


def server_identity(base_url: str) -> str:
    """`base_url` as cache keys name the server: spellings of one URL agree, and no secret is kept.

    Scheme and host lower-cased, no trailing slash; credentials, query and fragment (which can
    hold keys) dropped.
    """
    parts = urlsplit(base_url.strip())
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address keeps its brackets
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme.lower(), host, parts.path.rstrip("/"), "", ""))


def _is_malformed(exc: Exception) -> bool:
    # JSON decode errors are ValueErrors, as are bad numbers in a logprob or usage entry
    return isinstance(exc, (_MalformedResponse, openai.APIResponseValidationError, ValueError))


def _is_retryable(exc: Exception) -> bool:
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in _RETRYABLE_STATUS or exc.status_code >= 500
    return isinstance(exc, openai.APIConnectionError) or _is_malformed(exc)


def _retry_after(exc: BaseException | None) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date), if any."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    headers = exc.response.headers
    try:
        return float(headers["retry-after-ms"]) / 1000.0
    except (KeyError, ValueError):
        pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None


def _rejects_logprobs(exc: Exception) -> bool:
    return (
        isinstance(exc, openai.APIStatusError)
        and exc.status_code in (400, 422)
        and "logprob" in str(exc).lower()
    )


def _top_logprobs(choice: dict) -> list[dict[str, float]] | None:
    """Per generated token, token -> logprob of the top alternatives (plus the chosen one)."""
    content = (choice.get("logprobs") or {}).get("content")
    if content is None:
        return None
    positions = []
    for entry in content:
        top = {alt["token"]: float(alt["logprob"]) for alt in entry.get("top_logprobs") or []}
        top.setdefault(entry["token"], float(entry["logprob"]))
        positions.append(top)
    return positions
