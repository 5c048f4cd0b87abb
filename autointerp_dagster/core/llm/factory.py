"""The backend and client that an `LLMConfig` names (the configuration itself lives in core/config)."""

from __future__ import annotations

from pathlib import Path

from autointerp_dagster.core.config import LLMConfig
from autointerp_dagster.core.llm.client import LLMClient
from autointerp_dagster.core.llm.ct2_backend import CT2Backend
from autointerp_dagster.core.llm.hosted_backend import HostedBackend
from autointerp_dagster.core.llm.local_backend import LocalBackend
from autointerp_dagster.core.llm.openai_backend import OpenAIBackend
from autointerp_dagster.core.llm.pool import ServerPool
from autointerp_dagster.core.llm.types import Backend
from autointerp_dagster.core.models.loading import resolve_device
from autointerp_dagster.core.store import ResultsStore


def build_backend(config: LLMConfig, models_dir: str | Path) -> Backend:
    """`models_dir`: where a local model's GGUF file is assembled and converted once."""
    if config.backend == "openai" and config.base_urls:
        return ServerPool(config.servers, config.model, api_key_env=config.api_key_env,
                          timeout_s=config.timeout_s, max_retries=config.max_retries)
    if config.backend == "openai":
        return OpenAIBackend(config.base_url, config.model, api_key_env=config.api_key_env,
                             timeout_s=config.timeout_s, max_retries=config.max_retries)
    if local_engine(config) == "ctranslate2":
        local = CT2Backend(config.model, models_dir, device=config.device, max_context=config.max_context,
                           quantize=config.quantize, threads=config.threads)
    else:
        local = LocalBackend(config.model, models_dir, device=config.device, max_context=config.max_context,
                             quantize=config.quantize)
    # Shared: the machine's judge host answers with this same backend, which is never loaded here.
    return HostedBackend(local, config.model_dump_json(), models_dir) if config.share_local else local


def local_engine(config: LLMConfig) -> str:
    """`auto`: CTranslate2 on CPU, where it reads prompts faster than torch on AVX2 and AVX-512 machines alike,
    with half the memory and logprobs that agree with llama.cpp's (bench/bench_llm_engines.py); torch on CUDA,
    where the two were not compared."""
    if config.engine != "auto":
        return config.engine
    return "ctranslate2" if resolve_device(config.device).type == "cpu" else "torch"


def build_client(config: LLMConfig, backend: Backend, store: ResultsStore | None) -> LLMClient:
    return LLMClient(backend, store, concurrency=config.requests_in_flight, use_cache=config.use_cache)
