"""The settings root: every setting lives in a section, and the values that depend on others (the judge's
defaults, the seeds) are resolved once, when the settings are made, so what `autointerp config` prints is what
runs and no stage rewrites a value."""

from __future__ import annotations

from pathlib import Path

from pydantic import ConfigDict, Field, PrivateAttr, field_validator, model_validator

from .runtime import SERVER_LLM_STEPS, ConcurrencyConfig, ExecutorConfig, InstanceConfig, LLMConfig, StoreConfig
from .sections import (
    BaselineConfig,
    CacheConfig,
    ChecksConfig,
    CodersConfig,
    CorpusSpec,
    ExplainerConfig,
    IntruderConfig,
    ModelSpec,
    SamplingConfig,
    ScorerConfig,
    Section,
    SimulationConfig,
    SteeringConfig,
    SubjectScorersConfig,
)

# A small in-process judge gets a short explainer prompt (no few-shot block, no activation lines) and completes a
# prefilled answer line, except where the configuration sets a field itself.
LOCAL_EXPLAINER = {"few_shot": True, "show_activations": False, "reasoning": False, "prefill": True, "max_tokens": 40}
LOCAL_EXPLAINER_EXAMPLES = 10
LOCAL_JUDGED_PER_CLASS = 5
LOCAL_INTRUDER_TASKS, SERVER_INTRUDER_TASKS = 3, 6
BEST_OF_SELECT, MIN_SELECT = 20, 4  # held-out windows a latent for choosing among best-of-k explanations


class Settings(Section):
    """Everything a deployment is about. Defaults run offline: Gemma 3 270M and the King James Bible from
    PyPI, two TopK SAEs trained here, the 1.5B in-process judge."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    home: Path = Field(Path(".autointerp"), description="all state: DuckDB, Parquet, models, the Dagster instance")
    seed: int = Field(0, description="the seed every section's seed follows unless set (corpus.seed is its own)")
    model: ModelSpec = ModelSpec()
    corpus: CorpusSpec = CorpusSpec()
    coders: CodersConfig = CodersConfig()
    cache: CacheConfig = CacheConfig()
    sampling: SamplingConfig = SamplingConfig()
    explainer: ExplainerConfig = Field(ExplainerConfig(), description="unset fields follow the judge")
    baseline: BaselineConfig = BaselineConfig()
    scoring: ScorerConfig = ScorerConfig(mode="auto")
    steering: SteeringConfig = SteeringConfig()
    simulation: SimulationConfig = SimulationConfig()
    intruder: IntruderConfig = IntruderConfig()
    subject_scorers: SubjectScorersConfig = SubjectScorersConfig()
    llm: LLMConfig = LLMConfig()
    concurrency: ConcurrencyConfig = ConcurrencyConfig()
    instance: InstanceConfig = InstanceConfig()
    executor: ExecutorConfig = ExecutorConfig()
    checks: ChecksConfig = ChecksConfig()
    store: StoreConfig = StoreConfig()
    _resolved: dict[str, str] = PrivateAttr(default_factory=dict)  # setting -> why it has its effective value

    @field_validator("home")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return Path(value).expanduser().resolve()

    @model_validator(mode="after")
    def _resolve(self) -> Settings:
        """Fills in what follows from other settings; `resolved` says what and why."""
        why: dict[str, str] = {}
        local = self.llm.is_local
        judge = "a local judge" if local else "a server judge"
        explainer = self.explainer
        if local:
            chosen = explainer.model_dump(include=explainer.model_fields_set)
            defaults = {k: v for k, v in LOCAL_EXPLAINER.items()
                        if k not in chosen and not (k == "prefill" and chosen.get("reasoning"))}
            explainer = ExplainerConfig(**{**explainer.model_dump(), **defaults})
            why.update({f"explainer.{k}": f"default for {judge}" for k in defaults})
        if explainer.examples is None and local:
            explainer = explainer.model_copy(update={"examples": LOCAL_EXPLAINER_EXAMPLES})
            why["explainer.examples"] = f"default for {judge}"
        scoring = self.scoring
        if scoring.mode == "auto":
            scoring = scoring.model_copy(update={"mode": "per_example" if local else "batched"})
            why["scoring.mode"] = f"auto: {scoring.mode} for {judge}"
        if scoring.examples_per_class is None and local:
            scoring = scoring.model_copy(update={"examples_per_class": LOCAL_JUDGED_PER_CLASS})
            why["scoring.examples_per_class"] = f"default for {judge}"
        if self.concurrency.llm_steps is None:
            steps = 1 if local else SERVER_LLM_STEPS
            object.__setattr__(self, "concurrency", self.concurrency.model_copy(update={"llm_steps": steps}))
            why["concurrency.llm_steps"] = f"default for {judge}"
        intruder = self.intruder
        if intruder.tasks is None:  # each intruder task is a long prompt: fewer of them on the CPU judge
            intruder = intruder.model_copy(update={"tasks": LOCAL_INTRUDER_TASKS if local else SERVER_INTRUDER_TASKS})
            why["intruder.tasks"] = f"default for {judge}"
        sampling = self.sampling
        if sampling.n_select is None:
            sampling = sampling.model_copy(update={"n_select": BEST_OF_SELECT if explainer.best_of > 1 else 0})
            why["sampling.n_select"] = f"default for explainer.best_of = {explainer.best_of}"
        elif explainer.best_of > 1 and sampling.n_select < MIN_SELECT:
            raise ValueError(f"explainer.best_of = {explainer.best_of} chooses on held-out windows: set "
                             f"sampling.n_select to at least {MIN_SELECT} (it is {sampling.n_select})")
        seeded = {"sampling": sampling, "scoring": scoring, "subject_scorers": self.subject_scorers,
                  "intruder": intruder}
        if self.coders.embedded is not None:
            seeded["coders.embedded"] = self.coders.embedded
        for name, section in list(seeded.items()):
            if "seed" not in section.model_fields_set:
                seeded[name] = section.model_copy(update={"seed": self.seed})
                why[f"{name}.seed"] = "the root seed"
        coders = self.coders
        if "coders.embedded" in seeded:
            coders = coders.model_copy(update={"embedded": seeded["coders.embedded"]})
        for field, value in (("explainer", explainer), ("scoring", seeded["scoring"]),
                             ("sampling", seeded["sampling"]), ("subject_scorers", seeded["subject_scorers"]),
                             ("intruder", seeded["intruder"]),
                             ("coders", coders)):
            object.__setattr__(self, field, value)
        self._resolved = why
        return self

    @property
    def resolved(self) -> dict[str, str]:
        """The settings whose values followed from others at load (dotted name -> why)."""
        return dict(self._resolved)

    @property
    def alias(self) -> str:
        """Short model name used in coder keys (`gemma-3-270m/layers.6`)."""
        if self.model.alias:
            return self.model.alias
        name = self.model.name.removeprefix("embedded:").rstrip("/")
        return name.rsplit("/", 1)[-1].removesuffix(".gguf")

    @property
    def watched_sae_dir(self) -> Path:
        return self.coders.watch_dir or self.home / "saes"

    @property
    def db_path(self) -> Path:
        return self.home / "autointerp.duckdb"

    @property
    def store_root(self) -> Path | str:
        """The parquet backend's folder, or its object store URL (`s3://bucket/prefix`)."""
        if not self.store.root:
            return self.home / "results"
        return self.store.root if "://" in self.store.root else Path(self.store.root).expanduser()

    @property
    def results_location(self) -> Path | str:
        """Where results are, for messages: the DuckDB file or the Parquet folder."""
        return self.store_root if self.store.backend == "parquet" else self.db_path

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def corpus_dir(self) -> Path:
        return self.home / "corpus"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def pages_dir(self) -> Path:
        """The latent pages (HTML)."""
        return self.home / "pages"
