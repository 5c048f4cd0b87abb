"""The LLM response cache and call log, two tables in the results store.

`llm_responses` maps a hash of everything that determines an answer (the backend's identity:
server and model name, or a local model's files and settings; messages; sampling settings)
to the successful response, so re-running a pipeline step sends only the requests that never
succeeded. `llm_calls` has one row per distinct request a run handled: sent to the backend
(with attempts, tokens, latency, error) or served from the cache. Rows arrive in batches through short connections, never held across a call.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone

import pyarrow as pa

from autointerp_dagster.core.llm.types import ChatRequest, PromptScoreRequest
from autointerp_dagster.core.store import ResultsStore, transaction
from autointerp_dagster.core.store.tables import LLM_CALLS, LLM_DDL, LLM_RESPONSES


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
    encoded = json.dumps(identity, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()


def prompt_score_key(backend_identity: dict[str, str], request: PromptScoreRequest) -> str:
    """Hash of what decides a PromptScoreRequest's answer; its "kind" keeps it apart from every chat key."""
    identity = {"backend": backend_identity, "kind": "prompt_logprobs", "prompt": request.prompt,
                "offsets": list(request.offsets), "candidates": list(request.candidates)}
    encoded = json.dumps(identity, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()


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
        return cls(created_at=datetime.now(timezone.utc), **fields)


class LLMRecords:
    def __init__(self, store: ResultsStore):
        self.store = store
        self._ready = False

    def _ensure_tables(self, con) -> None:
        if not self._ready:
            con.execute(LLM_DDL)
            self._ready = True

    def lookup(self, keys: list[str]) -> dict[str, dict]:
        """Cached responses for the keys that have one."""
        if not keys:
            return {}
        wanted = pa.table({"cache_key": pa.array(sorted(set(keys)), pa.string())})
        with self.store.connect() as con:
            self._ensure_tables(con)
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
        now = datetime.now(timezone.utc)
        response_table = pa.Table.from_pylist(
            [{"cache_key": k, "model": m, "response": json.dumps(r), "created_at": now}
             for k, m, r in responses],
            schema=LLM_RESPONSES,
        )
        call_table = pa.Table.from_pylist([vars(c) for c in calls], schema=LLM_CALLS)
        with self.store.connect() as con:
            self._ensure_tables(con)
            with transaction(con, new_responses=response_table, new_calls=call_table):
                con.execute("INSERT OR IGNORE INTO llm_responses BY NAME SELECT * FROM new_responses")
                con.execute("INSERT OR IGNORE INTO llm_calls BY NAME SELECT * FROM new_calls")
