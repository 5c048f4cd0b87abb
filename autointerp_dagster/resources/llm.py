"""The LLM used to explain and judge, as a Dagster resource.

Settings come from AUTOINTERP_LLM_* environment variables (see the README); the API key is
read from the variable that `api_key_env` names, at call time, and is never stored in the
resource's config, DuckDB, logs or metadata. The default is the offline embedded judge.
"""

from functools import cache
from pathlib import Path

from dagster import ConfigurableResource

from ..core.llm import LLMClient
from ..core.llm.settings import LLMSettings, build_backend
from ..core.store import ResultsStore

EMBEDDED_JUDGE = "embedded:qwen2.5-coder-1.5b-instruct"


class LLMResource(ConfigurableResource):
    backend: str = "local"  # "openai" (any OpenAI-compatible server) or "local" (in-process)
    model: str = EMBEDDED_JUDGE
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    timeout_s: float = 120.0
    max_retries: int = 5
    max_context: int = 4096
    device: str = "auto"
    quantize: str = "auto"

    @property
    def is_local(self) -> bool:
        """A small in-process judge: per-example P(yes) judging and smaller prompts (see Settings)."""
        return self.backend == "local"

    def client(self, store: ResultsStore, models_dir: Path) -> LLMClient:
        settings = LLMSettings(
            backend=self.backend, model=self.model, base_url=self.base_url, api_key_env=self.api_key_env,
            concurrency=self.concurrency, timeout_s=self.timeout_s, max_retries=self.max_retries,
            models_dir=str(models_dir), device=self.device, max_context=self.max_context, quantize=self.quantize,
        )
        return LLMClient(_backend(settings), store, concurrency=settings.concurrency)


@cache
def _backend(settings: LLMSettings):
    """One backend per process and settings, so a local model is loaded once."""
    return build_backend(settings)
