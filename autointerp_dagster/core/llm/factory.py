"""The backend and client that an `LLMConfig` names (the configuration itself lives in core/config)."""

from __future__ import annotations

from pathlib import Path

from autointerp_dagster.core.config import LLMConfig
from autointerp_dagster.core.llm.client import LLMClient
from autointerp_dagster.core.llm.local_backend import LocalBackend
from autointerp_dagster.core.llm.openai_backend import OpenAIBackend
from autointerp_dagster.core.llm.types import Backend
from autointerp_dagster.core.store import ResultsStore


def build_backend(config: LLMConfig, models_dir: str | Path) -> Backend:
    """`models_dir`: where a local model's GGUF file is assembled and converted once."""
    if config.backend == "openai":
        return OpenAIBackend(config.base_url, config.model, api_key_env=config.api_key_env,
                             timeout_s=config.timeout_s, max_retries=config.max_retries)
    return LocalBackend(config.model, models_dir, device=config.device, max_context=config.max_context,
                        quantize=config.quantize)


def build_client(config: LLMConfig, backend: Backend, store: ResultsStore | None) -> LLMClient:
    return LLMClient(backend, store, concurrency=config.concurrency, use_cache=config.use_cache)
