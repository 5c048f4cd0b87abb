"""LLM access for explainers and scorers: one client over OpenAI-compatible servers or a local model."""

from autointerp_dagster.core.llm.client import LLMClient
from autointerp_dagster.core.llm.ct2_backend import CT2Backend
from autointerp_dagster.core.llm.factory import build_backend, build_client
from autointerp_dagster.core.llm.local_backend import LocalBackend
from autointerp_dagster.core.llm.openai_backend import OpenAIBackend
from autointerp_dagster.core.llm.pool import ServerPool
from autointerp_dagster.core.llm.records import cache_key
from autointerp_dagster.core.llm.types import (
    Backend,
    BackendError,
    BackendReply,
    ChatRequest,
    ChatResult,
)

__all__ = [
    "Backend",
    "BackendError",
    "BackendReply",
    "ChatRequest",
    "ChatResult",
    "CT2Backend",
    "LLMClient",
    "LocalBackend",
    "OpenAIBackend",
    "ServerPool",
    "build_backend",
    "build_client",
    "cache_key",
]
