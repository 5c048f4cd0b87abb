"""What callers send to an LLM, what they get back, and what a backend must provide."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

OK = "ok"
ERROR = "error"
CACHED = "cached"  # call-log status of a request answered from the response cache


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion to run; `purpose` only labels the call log (e.g. "explain").

    A last message with role "assistant" is a prefill: the model continues it, and the reply
    holds only the continuation (the local backend; servers differ, see the README).
    Generation ends before the first of `stop`, which the reply leaves out.
    `sample` numbers independent draws of one prompt at a temperature above 0 (best-of-k explanations): it is
    part of the cache key, so k draws are k calls, and servers get it as the request's `seed`.
    """

    messages: list[dict]
    max_tokens: int
    temperature: float = 0.0
    logprobs: bool = False
    top_logprobs: int = 0
    purpose: str = ""
    stop: tuple[str, ...] = ()
    sample: int = 0


@dataclass(frozen=True)
class ChatResult:
    """The answer to one request; failures are results too (status "error"), never exceptions.

    `top_logprobs` has one dict per generated token: token -> logprob of the top
    alternatives at that position, or None when not asked for or not supported.
    `call_id` names this call's row in the `llm_calls` log. Requests of one batch with equal cache
    keys are one call: each gets a copy of its result, with the same `call_id` and `cached` flag.
    """

    text: str | None
    status: str
    error: str | None
    top_logprobs: list[dict[str, float]] | None
    tokens_in: int
    tokens_out: int
    latency_s: float
    cached: bool
    call_id: str

    @property
    def ok(self) -> bool:
        return self.status == OK


@dataclass(frozen=True)
class BackendReply:
    """A backend's successful answer, with how many attempts it took."""

    text: str
    top_logprobs: list[dict[str, float]] | None
    tokens_in: int
    tokens_out: int
    attempts: int = 1


@dataclass(frozen=True)
class PromptScoreRequest:
    """Next-token logprobs of `candidates` at chosen places of a plain prompt, from one forward pass.

    `offsets` are character offsets into `prompt`: at each, the distribution of the token that starts
    there, given everything before it (so the text at an offset never influences its own answer). Used
    by the simulation scorer ("all at once": every activation slot of a window in one call).
    """

    prompt: str
    offsets: tuple[int, ...]
    candidates: tuple[str, ...]
    purpose: str = ""


@dataclass(frozen=True)
class PromptScoreReply:
    """Per offset, candidate -> logprob; a candidate outside what the backend returned (not one token, or
    not among a server's top logprobs) is absent, and an offset that is not a token boundary is None."""

    logprobs: list[dict[str, float] | None]
    tokens_in: int
    attempts: int = 1


@dataclass(frozen=True)
class PromptScoreResult:
    """The client's answer to one PromptScoreRequest; failures are results (status "error")."""

    logprobs: list[dict[str, float] | None] | None
    status: str
    error: str | None
    tokens_in: int
    latency_s: float
    cached: bool
    call_id: str

    @property
    def ok(self) -> bool:
        return self.status == OK


class BackendError(Exception):
    """A request the backend gave up on; the message is safe to store (no secrets). `retryable`: the server
    failed (connection, timeout, 408/429/5xx, a broken body), not the request; `retry_after`: seconds the
    server asked for."""

    def __init__(self, message: str, attempts: int, retryable: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.attempts = attempts
        self.retryable = retryable
        self.retry_after = retry_after


class Backend(Protocol):
    """Runs one request at a time; the client adds concurrency, caching and logging."""

    name: str  # the kind of backend, for the call log ("openai", "local")
    model: str  # names the model for people (the call log, `llm_responses.model`)
    # What answers, for cache keys: the server or the model's files, and settings that change outputs.
    # JSON-able, stable across runs, free of secrets, and known before the first call loads anything.
    identity: dict[str, str]
    max_concurrency: int | None  # a cap on parallel calls, None when the server decides

    def generate(self, request: ChatRequest) -> BackendReply:
        """Returns the reply or raises BackendError."""
        ...

    # Optional: `prompt_logprobs(request: PromptScoreRequest) -> PromptScoreReply` (raises BackendError), for
    # backends that can read logprobs inside a prompt (in process; vLLM's completions with echo). Callers
    # check `supports_prompt_logprobs`; chat-only APIs lack it.


def supports_prompt_logprobs(backend: Backend) -> bool:
    return callable(getattr(backend, "prompt_logprobs", None))
