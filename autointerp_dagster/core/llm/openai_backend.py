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

import openai

from autointerp_dagster.core.llm.retry import RetryPolicy, parse_retry_after
from autointerp_dagster.core.llm.types import BackendError, BackendReply, ChatRequest

log = logging.getLogger(__name__)

_RETRYABLE_STATUS = {408, 429}  # plus every 5xx


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
        self.timeout_s = timeout_s
        self.retry = RetryPolicy(max_retries, backoff_base_s, backoff_max_s)
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
        attempts = retries = 0
        while True:
            attempts += 1
            with_logprobs = request.logprobs and self._logprobs_supported
            try:
                return self._attempt(request, with_logprobs, attempts)
            except Exception as exc:  # classified below; nothing escapes unscrubbed
                if with_logprobs and _rejects_logprobs(exc):
                    with self._flag_lock:
                        if self._logprobs_supported:
                            log.warning("%s rejects logprobs; continuing without them", self.base_url)
                        self._logprobs_supported = False
                    continue
                message = self._redact(self._describe(exc))
                retry_after = _retry_after(exc)
                if not _is_retryable(exc) or retries >= self.retry.max_retries:
                    raise BackendError(message, attempts) from None
                delay = self.retry.delay(retries, retry_after)
                retries += 1
                log.info("LLM call failed (%s); retry %d/%d in %.2fs",
                         message, retries, self.retry.max_retries, delay)
                time.sleep(delay)

    def _attempt(self, request: ChatRequest, with_logprobs: bool, attempts: int) -> BackendReply:
        payload = {
            "model": self.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.stop:
            payload["stop"] = list(request.stop)
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


def _is_malformed(exc: Exception) -> bool:
    # JSON decode errors are ValueErrors, as are bad numbers in a logprob or usage entry
    return isinstance(exc, (_MalformedResponse, openai.APIResponseValidationError, ValueError))


def _is_retryable(exc: Exception) -> bool:
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in _RETRYABLE_STATUS or exc.status_code >= 500
    return isinstance(exc, openai.APIConnectionError) or _is_malformed(exc)


def _retry_after(exc: Exception) -> float | None:
    if isinstance(exc, openai.APIStatusError):
        return parse_retry_after(exc.response.headers)
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
