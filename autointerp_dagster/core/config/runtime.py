"""The sections about where the work runs: the LLM endpoints and prices, how much runs at once, the Dagster instance
and executor, and the results store (the pipeline's own settings are in `sections`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from .sections import EMBEDDED_JUDGE, Section


class Price(Section):
    """A model's price in US dollars per 1M tokens, as providers list them."""

    model: str = Field(description="the model name, as llm.model")
    prompt: float = Field(ge=0)
    completion: float = Field(ge=0)


class LLMServer(Section):
    """One replica of a server pool: its URL and how many requests it takes at once (null: llm.concurrency)."""

    url: str
    concurrency: int | None = Field(None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _from_url(cls, value):
        return {"url": value} if isinstance(value, str) else value


class LLMConfig(Section):
    """The explainer and judge. `local` runs a model in process (Hub name, folder, .gguf file or `embedded:`);
    `openai` talks to any OpenAI-compatible server (vLLM, llama.cpp, OpenRouter, OpenAI) at `base_url`, or to
    a pool of replicas of one model at `base_urls` (core/llm/pool.py). The API key is read from the variable
    `api_key_env` names, at call time, and never stored."""

    backend: Literal["local", "openai"] = Field("local", description="local: in process; openai: any compatible server")
    model: str = Field(EMBEDDED_JUDGE, description="served model name, or for local a Hub name, folder or .gguf")
    base_url: str = Field("http://127.0.0.1:8000/v1", description="openai: the server")
    base_urls: tuple[LLMServer, ...] = Field(
        (), description="openai: several replicas of one model instead (URLs, or {url, concurrency}); each request "
        "goes to the healthy one with the fewest in flight")
    api_key_env: str = Field("OPENAI_API_KEY", description="the variable holding the API key (never stored)")
    concurrency: int = Field(8, ge=1, description="requests in flight (with base_urls: per replica, by default)")
    timeout_s: float = Field(120.0, gt=0, description="per request")
    max_retries: int = Field(5, ge=0, description="on 429/5xx/timeouts, with back-off")
    max_context: int = Field(4096, ge=256, description="local: context length")
    device: str = Field("auto", description="local: auto, cpu, cuda")
    quantize: Literal["auto", "int8", "none"] = Field("auto", description="local: auto is int8 on CPU float32")
    engine: Literal["auto", "torch", "ctranslate2"] = Field(
        "auto", description="local: auto is ctranslate2 on CPU (faster prompts, half the memory; bench_llm_engines), "
                            "torch on CUDA")
    threads: int = Field(0, ge=0, description="local ctranslate2: CPU threads (0: every core the process may use)")
    share_local: bool = Field(
        False, description="local: one process on this machine holds the model for every step process (loaded "
        "once, core/llm/judge_host.py) instead of one copy a step; `autointerp ui` turns it on for the daemon's runs")
    use_cache: bool = Field(True, description="answer repeated requests from the response cache")
    prices: tuple[Price, ...] = Field(
        (), description="US dollars per 1M prompt and completion tokens: [{model, prompt, completion}, ...]; "
        "in-process models cost nothing")

    @property
    def is_local(self) -> bool:
        return self.backend == "local"

    @property
    def label(self) -> str:
        return f"{self.backend}:{self.model}"

    @property
    def price_table(self) -> dict[str, Price]:
        """Model name -> its price."""
        return {price.model: price for price in self.prices}

    @property
    def servers(self) -> list[tuple[str, int]]:
        """(URL, requests in flight at most) of each server: the replicas, else the one base_url."""
        if not self.base_urls:
            return [(self.base_url, self.concurrency)]
        return [(s.url, s.concurrency or self.concurrency) for s in self.base_urls]

    @property
    def requests_in_flight(self) -> int:
        """What a client keeps in flight: every replica's limit, summed."""
        return sum(limit for _, limit in self.servers)


SERVER_LLM_STEPS = 4  # a server judge's default llm_steps: several latent ranges' requests in flight at once


class ConcurrencyConfig(Section):
    """How much model work Dagster runs at once (written into the instance's dagster.yaml by `autointerp`).

    `model_steps`: steps that load the subject model at once (pool `model`); `llm_steps`: explanation and
    scoring steps at once (pool `llm`); with the in-process judge each holds a copy of it, so its default 1
    keeps one judge in memory, while a server judge's default lets several latent ranges' requests overlap;
    `runs`: runs in progress at once."""

    model_steps: int = Field(1, ge=1, description="steps holding the subject model at once (pool model)")
    llm_steps: int | None = Field(
        None, ge=1, description="explanation/scoring steps at once (pool llm); null: 1 for a local judge, "
        f"{SERVER_LLM_STEPS} for a server judge")
    runs: int = Field(4, ge=1, description="Dagster runs in progress at once")


class InstanceConfig(Section):
    """How the Dagster instance keeps runs moving (written into its dagster.yaml by `autointerp`): run monitoring
    finds runs whose process died (killed, out of memory) and fails them, frees the pool slots of ended runs,
    and the run-retry daemon re-executes a failed run from its failed step (LLM answers come from the cache)."""

    run_retries: int = Field(2, ge=0, description="re-executions of a failed run, from its failed step (daemon path)")
    monitor_interval_s: int = Field(15, ge=1, description="how often run monitoring checks that runs are alive")
    free_slots_after_s: int = Field(15, ge=0, description="pool slots of an ended run are freed this long after")
    storage: Literal["sqlite", "postgres"] = Field(
        "sqlite", description="runs, events and pools: sqlite (one machine) or postgres (docs/deploy.md)")
    postgres_url_env: str = Field("DAGSTER_POSTGRES_URL", description="postgres: the variable holding its URL")


class ExecutorConfig(Section):
    """Where a run's steps execute. `in_process`: one after another in the run's own process on this machine, so a
    run imports the project and loads MiniLM and the subject model once (on a small machine the imports of a
    process a step cost more than the steps). `multiprocess`: a process a step, a run's independent steps at once.
    `celery`: Celery workers (`autointerp worker`) on any machine that shares the instance (Postgres), the store
    and the settings; steps that load the subject model go to queue `model`, the judge's to `llm`, the rest to
    `default`. A killed worker's step is delivered again (late acknowledgement) once `visibility_timeout_s` has
    passed, so make it longer than the longest step."""

    kind: Literal["in_process", "multiprocess", "celery"] = Field(
        "in_process", description="in_process, multiprocess or celery")
    broker: str = Field("redis://127.0.0.1:6379/0", description="celery: the broker's URL")
    backend: str = Field("redis://127.0.0.1:6379/1", description="celery: the result backend's URL")
    visibility_timeout_s: int = Field(3600, ge=5, description="celery: a lost worker's step is redelivered after")


class StoreConfig(Section):
    """Where results live. `duckdb`: one file, `<home>/autointerp.duckdb` (one machine; writers take turns).
    `parquet`: a folder of Parquet files that any number of writers share without a lock (core/store/parquet.py),
    local or on an object store (`s3://bucket/prefix`; credentials and endpoint from the AWS_* variables);
    `root` null: `<home>/results`."""

    backend: Literal["duckdb", "parquet"] = Field("duckdb", description="duckdb: one file; parquet: many writers")
    root: str | None = Field(None, description="parquet: a folder or s3://bucket/prefix (null: <home>/results)")
