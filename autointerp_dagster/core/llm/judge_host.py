"""One process on this machine that holds the in-process LLM for every step process (`llm.share_local`).

Dagster's multiprocess executor runs each step in a fresh process, so an in-process judge would be loaded
again by every explanation and scoring step (seconds to minutes each, and one copy in memory per step). The
host loads it once and answers the steps' requests over HTTP on 127.0.0.1, one at a time like the engine
itself. It answers with the very backend a step would have built, so answers, and the response cache keys
(the backend's identity), are those of the in-process judge.

Hosts are found through an address file under `models_dir/judge-hosts/`, one per identity, written once the
host listens; the first step that finds none starts one (core/llm/hosted_backend.py), under a file lock so
that two steps never start two. A host quits after `idle_s` without a request and removes its file.

    python -m autointerp_dagster.core.llm.judge_host --models-dir DIR --config LLM_JSON [--idle-s 600]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from autointerp_dagster.core.llm.host_protocol import IDLE_S, LISTENING, decode_request, host_files
from autointerp_dagster.core.llm.types import BackendError


class _Handler(BaseHTTPRequestHandler):
    server: _HostServer

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        if self.path not in ("/generate", "/prompt_logprobs"):
            return self._send(404, {"error": f"no endpoint {self.path}", "retryable": False})
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.activity():
            try:
                request = decode_request(self.path, body)
                backend = self.server.backend
                reply = backend.generate(request) if self.path == "/generate" else backend.prompt_logprobs(request)
            except BackendError as error:
                return self._send(422, {"error": error.message, "retryable": error.retryable})
            except Exception as error:  # the model failed to load or run: the step records it
                return self._send(500, {"error": f"{type(error).__name__}: {error}", "retryable": False})
        self._send(200, dataclasses.asdict(reply))

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args) -> None:  # noqa: A002 (http.server's name): one line a request is noise
        pass


class _HostServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, backend, idle_s: float):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.backend = backend
        self.idle_s = idle_s
        self._lock = threading.Lock()
        self._in_flight = 0
        self._last = time.monotonic()

    @contextmanager
    def activity(self):
        """Marks a request in flight: a host never quits while it answers."""
        with self._lock:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                self._last = time.monotonic()

    def idle_for(self) -> float:
        with self._lock:
            return 0.0 if self._in_flight else time.monotonic() - self._last


def serve(backend, models_dir: str | Path, idle_s: float = IDLE_S) -> None:
    """Serves `backend` until it has been idle for `idle_s`; its address file exists while it listens."""
    address, _ = host_files(models_dir, backend.identity)
    server = _HostServer(backend, idle_s)
    address.parent.mkdir(parents=True, exist_ok=True)
    record = {"url": f"http://127.0.0.1:{server.server_address[1]}", "pid": os.getpid(), "model": backend.model}
    partial = address.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(record))
    os.replace(partial, address)
    print(f"{LISTENING} {backend.model} at {record['url']} (pid {os.getpid()})", flush=True)

    def quit_when_idle() -> None:
        while server.idle_for() < idle_s:
            time.sleep(min(1.0, idle_s / 4))
        server.shutdown()

    threading.Thread(target=quit_when_idle, daemon=True).start()
    # SIGTERM (a stopped UI, a shutdown) ends it as idleness does, removing its address file.
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    try:
        server.serve_forever()
    finally:
        try:
            if json.loads(address.read_text()).get("pid") == os.getpid():
                address.unlink()  # a host started after this one was presumed dead keeps its file
        except (OSError, ValueError):
            pass
        print(f"judge host {os.getpid()} quits (idle for {idle_s:.0f} s, or stopped)", flush=True)


def main() -> None:
    from autointerp_dagster.core.config import LLMConfig
    from autointerp_dagster.core.llm.factory import build_backend

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", required=True)
    parser.add_argument("--config", required=True, help="the llm settings section as JSON")
    parser.add_argument("--idle-s", type=float, default=IDLE_S)
    args = parser.parse_args()
    config = LLMConfig.model_validate_json(args.config).model_copy(update={"share_local": False})
    serve(build_backend(config, args.models_dir), args.models_dir, args.idle_s)


if __name__ == "__main__":
    main()
