"""What a judge host and its clients agree on: where a host's address is, and requests and replies on the wire.

Kept apart from core/llm/judge_host.py, which runs as a program (`python -m`), so that clients never import it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from autointerp_dagster.core.llm.types import BackendReply, ChatRequest, PromptScoreReply, PromptScoreRequest

HOSTS_FOLDER = "judge-hosts"
IDLE_S = 600.0  # a host with no request for this long quits (a later step starts another)
LISTENING = "judge host for"  # how a host's log line starts once it listens: one line a host started


def host_files(models_dir: str | Path, identity: dict[str, str]) -> tuple[Path, Path]:
    """(address file, lock file) of the host for one backend identity."""
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    folder = Path(models_dir) / HOSTS_FOLDER
    return folder / f"{key}.json", folder / f"{key}.lock"


# The wire: requests and replies are their dataclasses as JSON (floats round-trip exactly).
def encode(value) -> bytes:
    return json.dumps(dataclasses.asdict(value)).encode()


def decode_request(path: str, body: dict) -> ChatRequest | PromptScoreRequest:
    if path == "/generate":
        return ChatRequest(**{**body, "stop": tuple(body["stop"])})
    return PromptScoreRequest(**{**body, "offsets": tuple(body["offsets"]), "candidates": tuple(body["candidates"])})


def decode_reply(path: str, body: dict) -> BackendReply | PromptScoreReply:
    return BackendReply(**body) if path == "/generate" else PromptScoreReply(**body)
