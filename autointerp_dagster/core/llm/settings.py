"""Which LLM to use, from environment variables, and the client built from that choice.

The settings name the environment variable that holds the API key, never the key
itself, so settings can be printed, logged and stored in run metadata safely.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from autointerp_dagster.core.llm.client import LLMClient
from autointerp_dagster.core.llm.local_backend import LocalBackend
from autointerp_dagster.core.llm.openai_backend import OpenAIBackend
from autointerp_dagster.core.llm.types import Backend
from autointerp_dagster.core.store import ResultsStore

_ENV = "AUTOINTERP_LLM_"


@dataclass(frozen=True)
class LLMSettings:
    backend: str = "openai"  # "openai" (any OpenAI-compatible server) or "local"
    model: str = ""  # openai: the served model's name; local: Hub name, folder, .gguf file or embedded:<name>
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    timeout_s: float = 60.0
    max_retries: int = 5
    models_dir: str = ".autointerp/models"  # local: where GGUF files are assembled and converted
    device: str = "auto"
    quantize: str = "auto"  # local: int8 linear layers on CPU ("auto"), "int8" or "none"
    max_context: int = 4096
    use_cache: bool = True


def llm_settings_from_env(environ: dict[str, str] | None = None, **defaults) -> LLMSettings:
    """Settings from AUTOINTERP_LLM_<FIELD> variables (e.g. AUTOINTERP_LLM_BASE_URL),
    falling back to `defaults`, then to the dataclass defaults."""
    env = os.environ if environ is None else environ
    values = dict(defaults)
    for name, field in LLMSettings.__dataclass_fields__.items():
        raw = env.get(_ENV + name.upper())
        if raw is None or raw == "":
            continue
        kind = field.type
        if kind == "int":
            values[name] = int(raw)
        elif kind == "float":
            values[name] = float(raw)
        elif kind == "bool":
            values[name] = raw.strip().lower() in ("1", "true", "yes", "on")
        else:
            values[name] = raw
    return LLMSettings(**values)


def build_backend(settings: LLMSettings) -> Backend:
    if settings.backend == "openai":
        if not settings.model:
            raise ValueError("the openai backend needs a model name (AUTOINTERP_LLM_MODEL)")
        return OpenAIBackend(
            settings.base_url,
            settings.model,
            api_key_env=settings.api_key_env,
            timeout_s=settings.timeout_s,
            max_retries=settings.max_retries,
        )
    if settings.backend == "local":
        if not settings.model:
            raise ValueError("the local backend needs a model (AUTOINTERP_LLM_MODEL)")
        return LocalBackend(
            settings.model, settings.models_dir, device=settings.device, max_context=settings.max_context,
            quantize=settings.quantize,
        )
    raise ValueError(f"unknown LLM backend {settings.backend!r}; use 'openai' or 'local'")


def build_client(settings: LLMSettings, store: ResultsStore | None) -> LLMClient:
    return LLMClient(
        build_backend(settings), store, concurrency=settings.concurrency, use_cache=settings.use_cache
    )
