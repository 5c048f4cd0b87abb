"""A scripted OpenAI chat-completions server on 127.0.0.1 for tests and benchmarks.

Tests of anything that talks to an LLM (the client, explainers, scorers) run against
this real HTTP server instead of mocks, so retries, timeouts and parsing are exercised
through the openai SDK exactly as against vLLM or OpenAI.

    with StubLLMServer(reply=lambda messages: "Yes") as server:
        backend = OpenAIBackend(server.base_url, model="stub")
        ...
        assert server.call_count == 3

What the server answers, per request, in this order:
1. the next item queued with `enqueue(...)` (a `Fault`, a `StubReply` or a plain string);
2. otherwise `reply(messages)`, which returns the same kinds (a string, a `StubReply`
   with chosen logprobs, or a `Fault` to fail that prompt).
Requests asking for logprobs get a 400 when `reject_logprobs` is set, like servers
that do not support them; otherwise each word of the reply is one token with made-up
top alternatives unless the `StubReply` gives its own. Replies end before the first of the
request's `stop` strings and are cut to `max_tokens` words. `latency_s` delays every answer,
for concurrency measurements.

The legacy `/completions` route answers `echo` + `logprobs` requests (prompt logprobs, as vLLM serves
them) when `prompt_logprobs(prompt, offset)` is given: the prompt is cut into words, single spaces and
single punctuation marks, and each token's top alternatives are what that function returns for the text
before `offset`. Without it the route is a 404, like a chat-only API.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Fault:
    """One failed answer: an HTTP status with a JSON error, a hang, or a broken body."""

    kind: str
    status: int = 500
    message: str = ""
    retry_after: float | None = None
    seconds: float = 0.0

    @classmethod
    def rate_limit(cls, retry_after: float | None = None) -> Fault:
        return cls("status", 429, "Rate limit reached", retry_after=retry_after)

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls("status", status, "Internal server error")

    @classmethod
    def http(cls, status: int, message: str) -> Fault:
        return cls("status", status, message)

    @classmethod
    def hang(cls, seconds: float) -> Fault:
        """Waits `seconds` before answering normally, to trip client timeouts."""
        return cls("hang", seconds=seconds)

    @classmethod
    def malformed(cls, body: str = '{"id": "broken", "choices": [') -> Fault:
        """A 200 whose body is not a chat completion (by default not even JSON)."""
        return cls("malformed", 200, message=body)


@dataclass(frozen=True)
class StubReply:
    """A reply text with the exact top logprobs to report per token (token -> logprob), and optionally its
    tokens (by default each word is one token)."""

    text: str
    top_logprobs: list[dict[str, float]] | None = None
    tokens: list[str] | None = None


@dataclass(frozen=True)
class RecordedRequest:
    body: dict
    authorization: str | None

    @property
    def messages(self) -> list[dict]:
        return self.body.get("messages", [])

    @property
    def prompt(self) -> str:
        """The text of the last message, the usual thing a test matches on."""
        return self.messages[-1]["content"] if self.messages else ""


Answer = str | StubReply | Fault


@dataclass
class StubLLMServer:
    reply: Callable[[list[dict]], Answer] | str = "stub reply"
    latency_s: float = 0.0
    reject_logprobs: bool = False
    prompt_logprobs: Callable[[str, int], dict[str, float]] | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    answered: list[dict] = field(default_factory=list)  # bodies of the requests answered with a completion
    models: tuple[str, ...] = ()  # what GET /models lists
    api_key: str | None = None  # when set, requests without `Authorization: Bearer <api_key>` get a 401

    def __post_init__(self):
        self.killed = False
        self._queue: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def call_count(self) -> int:
        return len(self.requests)

    def enqueue(self, *answers: Answer) -> None:
        """Queues answers for the next requests, whatever their prompt."""
        with self._lock:
            self._queue.extend(answers)

    def start(self) -> StubLLMServer:
        handler = type("Handler", (_Handler,), {"stub": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def kill(self) -> None:
        """Dies like a killed process: stops listening, and requests in flight or on open keep-alive
        connections get their connection closed without an answer."""
        self.killed = True
        self.stop()

    def __enter__(self) -> StubLLMServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _answer_for(self, body: dict, authorization: str | None) -> Answer:
        with self._lock:
            self.requests.append(RecordedRequest(body, authorization))
            if self._queue:
                return self._queue.popleft()
        return self._default_answer(body)

    def _default_answer(self, body: dict) -> Answer:
        if self.reject_logprobs and body.get("logprobs"):
            return Fault.http(400, "logprobs are not supported by this server")
        return self.reply(body.get("messages", [])) if callable(self.reply) else self.reply


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; no 40 ms ACK stall
    stub: StubLLMServer

    def log_message(self, format, *args):  # quiet: tests read their own logs
        pass

    def _refused(self) -> bool:
        """A 401 like OpenAI's when the server wants a key and the request lacks it."""
        if self.stub.api_key is None or self.headers.get("Authorization") == f"Bearer {self.stub.api_key}":
            return False
        self._send(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                   "code": "invalid_api_key"}})
        return True

    def do_GET(self):
        if self._refused():
            return
        if self.path.rstrip("/").endswith("/models"):  # what vLLM and OpenAI list: the served model names
            self._send(200, {"object": "list", "data": [{"id": name, "object": "model"} for name in self.stub.models]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        if self._refused():
            return
        chat = self.path.rstrip("/").endswith("/chat/completions")
        legacy = not chat and self.path.rstrip("/").endswith("/completions") and self.stub.prompt_logprobs
        if not (chat or legacy):
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        if legacy:
            self.stub.requests.append(RecordedRequest(body, self.headers.get("Authorization")))
            self._send(200, _echo_completion(body, self.stub.prompt_logprobs))
            return
        if self.stub.killed:
            self.close_connection = True
            return
        answer = self.stub._answer_for(body, self.headers.get("Authorization"))
        if self.stub.latency_s:
            time.sleep(self.stub.latency_s)
        if self.stub.killed:  # died while "thinking": the answer never leaves
            self.close_connection = True
            return
        if isinstance(answer, Fault) and answer.kind == "hang":
            time.sleep(answer.seconds)
            answer = self.stub._default_answer(body)
        if isinstance(answer, Fault) and answer.kind == "malformed":
            self._send_raw(200, answer.message.encode(), {})
        elif isinstance(answer, Fault):
            headers = {} if answer.retry_after is None else {"Retry-After": f"{answer.retry_after:g}"}
            error = {"message": answer.message, "type": "stub_error", "code": answer.status}
            self._send(answer.status, {"error": error}, headers)
        else:
            self._send(200, _completion(body, answer if isinstance(answer, StubReply) else StubReply(answer)))
            with self.stub._lock:
                self.stub.answered.append(body)

    def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
        self._send_raw(status, json.dumps(payload).encode(), headers or {})

    def _send_raw(self, status: int, data: bytes, headers: dict) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test); nothing to answer


def _completion(body: dict, reply: StubReply) -> dict:
    max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or 1 << 30
    text = reply.text
    for stop in body.get("stop") or ():
        text = text.split(stop, 1)[0]
    if reply.tokens is not None:  # as given, up to where a stop string cut the text
        tokens, used = [], 0
        for token in reply.tokens:
            if used >= len(text):
                break
            tokens.append(token[: len(text) - used])
            used += len(tokens[-1])
    else:
        tokens = text.split(" ")
        tokens = [t if i == 0 else " " + t for i, t in enumerate(tokens)]
    finish = "length" if len(tokens) > max_tokens else "stop"
    tokens = tokens[:max_tokens]
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    choice = {"index": 0, "message": {"role": "assistant", "content": "".join(tokens)}, "finish_reason": finish}
    if body.get("logprobs"):
        choice["logprobs"] = {"content": _logprobs(tokens, reply.top_logprobs, body.get("top_logprobs") or 0)}
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "stub"),
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(tokens),
            "total_tokens": prompt_tokens + len(tokens),
        },
    }


def _echo_completion(body: dict, prompt_logprobs: Callable[[str, int], dict[str, float]]) -> dict:
    """A legacy completion echoing the prompt with each prompt token's top logprobs, plus one generated token."""
    prompt = body["prompt"]
    spans = [(m.start(), m.group()) for m in re.finditer(r"\w+|\s|[^\w\s]", prompt)] + [(len(prompt), " x")]
    top = [None] + [dict(sorted(prompt_logprobs(prompt, offset).items(), key=lambda kv: -kv[1])[: body["logprobs"]])
                    for offset, _ in spans[1:]]
    logprobs = {"tokens": [t for _, t in spans], "token_logprobs": [None] + [-1.0] * (len(spans) - 1),
                "top_logprobs": top, "text_offset": [offset for offset, _ in spans]}
    return {"id": "cmpl-stub", "object": "text_completion", "model": body.get("model", "stub"),
            "choices": [{"index": 0, "text": prompt + " x", "logprobs": logprobs, "finish_reason": "length"}],
            "usage": {"prompt_tokens": len(spans) - 1, "completion_tokens": 1, "total_tokens": len(spans)}}


def _logprobs(tokens: list[str], given: list[dict[str, float]] | None, top_n: int) -> list[dict]:
    """OpenAI's per-token logprob entries; made-up alternatives unless `given`."""
    entries = []
    for i, token in enumerate(tokens):
        if given is not None and i < len(given):
            top = sorted(given[i].items(), key=lambda kv: -kv[1])
        else:
            top = [(token, math.log(0.6))] + [(f"alt{k}", math.log(0.3 / 2**k)) for k in range(1, 20)]
        chosen = dict(top).get(token, top[0][1])
        entries.append({
            "token": token,
            "logprob": chosen,
            "bytes": list(token.encode()),
            "top_logprobs": [
                {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top[:top_n]
            ],
        })
    return entries


def stub_client(server: StubLLMServer, store, concurrency: int = 8):
    """An LLMClient on the real OpenAI backend pointed at `server`, with test-sized timeouts and back-off."""
    from autointerp_dagster.core.llm import LLMClient, OpenAIBackend

    backend = OpenAIBackend(
        server.base_url, "stub-model", timeout_s=5.0, max_retries=2, backoff_base_s=0.01, backoff_max_s=0.05
    )
    return LLMClient(backend, store, concurrency=concurrency)
