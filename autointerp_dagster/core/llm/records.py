"""The LLM response cache and call log, two tables in the results store.

`llm_responses` maps a hash of everything that determines an answer (the backend's identity:
server and model name, or a local model's files and settings; messages; sampling settings)
to the successful response, so re-running a pipeline step sends only the requests that never
succeeded. `llm_calls` has one row per distinct request a run handled: sent to the backend
(with attempts, tokens, latency, error) or served from the cache. Rows arrive in batches through short
connections, never held across a call.

Between batches, every answer is also appended the moment it arrives to a journal file of the writing
process's own (`llm-journal/` beside the results), so a process killed before its next batch write (SIGKILL,
out of memory) loses no answer it paid for: the next lookup folds the journals of dead writers into the tables.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pyarrow as pa

from autointerp_dagster.core.llm.types import ChatRequest, PromptScoreRequest
from autointerp_dagster.core.store import ResultsStore
from autointerp_dagster.core.store.tables import LLM_CALLS, LLM_RESPONSES

from ..keys import stable_id


def cache_key(backend_identity: dict[str, str], request: ChatRequest) -> str:
    """Hash of what decides the answer; `purpose` is a label and does not count.

    `backend_identity` (a backend's `identity`), not the model's name: servers or local
    settings that answer differently under one name must not share answers.
    """
    identity = {
        "backend": backend_identity,
        "messages": request.messages,
        "max_tokens": int(request.max_tokens),
        "temperature": float(request.temperature),
        "logprobs": bool(request.logprobs),
        "top_logprobs": int(request.top_logprobs) if request.logprobs else 0,
    }
    if request.stop:
        identity["stop"] = list(request.stop)
    if request.sample:  # absent for the first draw, so keys made before draws were numbered still match
        identity["sample"] = int(request.sample)
    return stable_id(identity, compact=True)


def prompt_score_key(backend_identity: dict[str, str], request: PromptScoreRequest) -> str:
    """Hash of what decides a PromptScoreRequest's answer; its "kind" keeps it apart from every chat key."""
    identity = {"backend": backend_identity, "kind": "prompt_logprobs", "prompt": request.prompt,
                "offsets": list(request.offsets), "candidates": list(request.candidates)}
    return stable_id(identity, compact=True)


@dataclass
class CallRecord:
    """One `llm_calls` row; `prompt_hash` is the request's cache key."""

    call_id: str
    backend: str
    model: str
    purpose: str
    prompt_hash: str
    tokens_in: int
    tokens_out: int
    latency_s: float
    attempts: int
    status: str
    error: str | None
    created_at: datetime

    @classmethod
    def now(cls, **fields) -> CallRecord:
        return cls(created_at=datetime.now(UTC), **fields)


class Journal:
    """One process's answers as JSON lines, each written (and flushed to the OS) as it arrives; removed once
    its rows are in the tables. The file name carries the host and pid, so a reader can tell a dead writer's."""

    def __init__(self, folder: Path):
        self.path = folder / f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._file = None

    def append(self, response: tuple[str, str, dict] | None, call: CallRecord) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        line = {"response": list(response) if response else None,
                "call": {**asdict(call), "created_at": call.created_at.isoformat()}}
        self._file.write(json.dumps(line) + "\n")
        self._file.flush()

    def discard(self) -> None:
        """Its rows are in the tables: close and remove the file."""
        if self._file is not None:
            self._file.close()
            self._file = None
            self.path.unlink(missing_ok=True)


def read_journal(path: Path) -> tuple[list[tuple[str, str, dict]], list[CallRecord]]:
    """A journal's answers and call rows; a last line cut short by the kill is skipped."""
    responses, calls = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry["response"]:
            responses.append(tuple(entry["response"]))
        call = entry["call"]
        calls.append(CallRecord(**{**call, "created_at": datetime.fromisoformat(call["created_at"])}))
    return responses, calls


def _writer_gone(path: Path) -> bool:
    """Whether the process that wrote a journal (host-pid-id.jsonl) is gone; other hosts' are never judged."""
    host, pid, _ = path.stem.rsplit("-", 2)
    return host == socket.gethostname() and not psutil.pid_exists(int(pid))


class LLMRecords:
    def __init__(self, store: ResultsStore):
        self.store = store
        self.journal_dir = Path(store.folder) / "llm-journal"

    def journal(self) -> Journal:
        """A new journal for one batch of requests of this process."""
        return Journal(self.journal_dir)

    def recover(self) -> int:
        """Folds the journals of dead writers into the tables and removes them; returns the answers recovered."""
        recovered = 0
        for path in sorted(self.journal_dir.glob("*.jsonl")) if self.journal_dir.is_dir() else ():
            if _writer_gone(path):
                responses, calls = read_journal(path)
                self.write(responses, calls)
                recovered += len(responses)
                path.unlink(missing_ok=True)
        return recovered

    def lookup(self, keys: list[str]) -> dict[str, dict]:
        """Cached responses for the keys that have one (after folding in what dead writers journaled)."""
        if not keys:
            return {}
        self.recover()
        if not self.store.has_table("llm_responses"):
            return {}
        wanted = pa.table({"cache_key": pa.array(sorted(set(keys)), pa.string())})
        with self.store.connect() as con:
            con.register("wanted_keys", wanted)
            try:
                rows = con.execute(
                    "SELECT r.cache_key, r.response FROM llm_responses r "
                    "JOIN wanted_keys w USING (cache_key)"
                ).fetchall()
            finally:
                con.unregister("wanted_keys")
        return {key: json.loads(response) for key, response in rows}

    def write(self, responses: list[tuple[str, str, dict]], calls: list[CallRecord]) -> None:
        """Stores (cache_key, model, response) successes and call rows in one connection."""
        if not responses and not calls:
            return
        now = datetime.now(UTC)
        response_table = pa.Table.from_pylist(
            [{"cache_key": k, "model": m, "response": json.dumps(r), "created_at": now}
             for k, m, r in responses],
            schema=LLM_RESPONSES,
        )
        call_table = pa.Table.from_pylist([vars(c) for c in calls], schema=LLM_CALLS)
        self.store.append({"llm_responses": response_table, "llm_calls": call_table})
