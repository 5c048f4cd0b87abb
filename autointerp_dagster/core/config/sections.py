"""The settings tree's sections: every setting, its type, default and bounds (the root and how its effective
values are resolved live in `settings`, loading in `load`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

EMBEDDED_MODEL = "embedded:gemma-3-270m"
EMBEDDED_CORPUS = "embedded:kjv"
EMBEDDED_JUDGE = "embedded:qwen2.5-coder-1.5b-instruct"
HIGHLIGHT_THRESHOLD = 0.3  # tokens above this share of an example's maximum are marked (delphi's value)


class Section(BaseModel):
    """A block of settings: unknown keys are errors, values are checked by type, nothing changes after load."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    # Fields added after results keyed by `identity()` existed: at their defaults they ask for what was made
    # before, so they stay out of it and stored results keep their keys.
    later_fields: ClassVar[tuple[str, ...]] = ()
    # Fields that never named results (they were separate settings, or are counted into ids beside the section).
    unnamed_fields: ClassVar[tuple[str, ...]] = ()

    def identity(self) -> dict:
        """The settings that name results made with this section (hashed into explainer and scorer ids)."""
        return {k: v for k, v in self.model_dump().items() if k not in self.unnamed_fields
                and not (k in self.later_fields and v == type(self).model_fields[k].default)}


@dataclass(frozen=True)
class CoderSource:
    """Where a sparse coder comes from, as configured (`coders.paths`) or found in the watched folder.

    `path`: a folder, file or `hf://org/repo/sub/folder`; `kind`: auto (detected from the files),
    sparsify, saelens, gemmascope or neurons; `hookpoint`/`name` override what the format says;
    `k`: top-k for `neurons`.
    """

    path: str
    hookpoint: str | None = None
    name: str | None = None
    kind: str = "auto"
    k: int | None = None


class CorpusSpec(Section):
    """A text source and how it becomes fixed-length token rows.

    `source` is `embedded:kjv`, `hf:<dataset name>` (with `dataset_config`, `split`, `text_column`),
    or a local .txt/.jsonl/.parquet file or folder of them. `bos: prepend` starts every row with
    the tokenizer's BOS token (position 0 is then never encoded: its residual norm is huge and it
    carries no text); `none` feeds raw text tokens only.
    """

    source: str = Field(EMBEDDED_CORPUS,
                        description="embedded:kjv, hf:<dataset>, or a local .txt/.jsonl/.parquet file or folder")
    dataset_config: str | None = None
    split: str = "train"
    text_column: str = "text"
    ctx_len: int = Field(256, ge=2, description="tokens a row")
    token_budget: int = Field(131_072, ge=1, description="tokens read from the source")
    seed: int = 22
    bos: Literal["prepend", "none"] = Field("prepend", description="prepend: each row starts with BOS, never encoded")


class EmbeddedSaeSpec(Section):
    """The small TopK SAEs the embedded default trains with sparsify (a separate, cached step)."""

    hookpoints: tuple[str, ...] = ("layers.6", "layers.7")
    num_latents: int = Field(4096, ge=1)
    k: int = Field(32, ge=1)
    train_tokens: int = Field(32_768, ge=1)
    epochs: int = Field(8, ge=1)
    batch_tokens: int = Field(1024, ge=1)
    seed: int = Field(0, description="unless set, the root seed")
    run_name: str = "embedded-topk"


class SamplingConfig(Section):
    """How examples are cut and chosen per latent (see core/sampling)."""

    example_ctx_len: int = Field(32, ge=1)
    peak_index: int = Field(24, ge=0, description="tokens of left context before the peak")
    min_activating: int = Field(20, ge=0, description="fewer activating windows and the latent is skipped")
    n_train: int = Field(40, ge=0)
    n_test: int = Field(50, ge=0)
    n_quantiles: int = Field(10, ge=1)
    n_random_negatives: int = Field(50, ge=0)
    n_hard_negatives: int = Field(20, ge=0, description="in each of two shares: explainer-only, scorer-only")
    hard_negative_queries: int = Field(10, ge=1, description="top windows whose embeddings form the query")
    digest_tokens: int = Field(10, ge=0, description="digest: most frequent peak tokens kept per latent")
    promoted_tokens: int = Field(10, ge=0, description="digest: tokens the decoder direction promotes (0: none)")
    n_neighbour_negatives: int = Field(
        20, ge=0, description="in each of two shares: windows where decoder neighbours fire and the latent is silent")
    neighbour_latents: int = Field(5, ge=1, description="nearest latents by decoder cosine")
    latents_per_range: int | None = Field(1, ge=0, description="latents explained per (coder, range); null: all")
    negatives: Literal["random", "random+hard", "random+neighbour", "random+hard+neighbour"] = Field(
        "random", description="which negatives the scorers judge (and a contrastive explainer sees)")
    n_select: int | None = Field(
        None, ge=0, description="held-out activating windows, and as many random negatives, that neither the "
        "explainer nor a scorer sees: best-of-k explanations are chosen on them; null: 20 with explainer.best_of > 1")
    seed: int = Field(0, description="unless set, the root seed")

    @model_validator(mode="after")
    def _peak_inside_window(self):
        if self.peak_index >= self.example_ctx_len:
            raise ValueError(f"peak_index {self.peak_index} must lie in [0, example_ctx_len={self.example_ctx_len})")
        return self


class ExplainerConfig(Section):
    """How explanations are asked for. `order`: how the shown examples are arranged (strongest_first, the
    paper's; quantile_spread: one per activation quantile in turn, strongest quantile first; random: a fixed
    shuffle per latent). `contrastive` also shows the item's hard negatives. `reasoning` (off in the paper)
    asks for a step-by-step analysis before the answer line (chain of thought); without it the model
    answers with the line alone. `prefill` (no reasoning) starts the model's answer ("[EXPLANATION]: The
    marked words are") so it only completes the sentence, ending at a newline: small models then never miss
    the answer format. `output_view: steering` makes it the output-side explainer: the digest's promoted tokens
    are those whose probability rises most when the latent is steered (on its explainer windows, in `examples`;
    the strength search's tolerance and steps are the intervention scorer's)."""

    show_activations: bool = True
    few_shot: bool = True
    order: Literal["strongest_first", "quantile_spread", "random"] = Field(
        "strongest_first", description="how shown examples are arranged (strongest_first: the paper's)")
    reasoning: bool = Field(False, description="chain of thought: step-by-step analysis before the answer line")
    prefill: bool = False
    contrastive: bool = False
    digest: Literal["none", "input", "input+output"] = Field(
        "input+output", description="after the examples: top peak tokens (input), decoder-promoted tokens (output)")
    output_view: Literal["unembedding", "steering"] = Field(
        "unembedding", description="the digest's output side: tokens the decoder direction promotes through the "
        "unembedding (weights only), or whose probability rises most when the latent is steered on its explainer "
        "windows (the output-side explainer; costs subject-model forwards in `examples`)")
    steering_prompts: int = Field(4, ge=1, description="output_view steering: explainer windows steered a latent")
    highlight_threshold: float = Field(HIGHLIGHT_THRESHOLD, gt=0, le=1)
    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0)
    examples: int | None = Field(None, ge=1, description="examples shown; null: 10 for a local judge, else all (40)")
    best_of: int = Field(1, ge=1, description="explanations drawn a latent; the one that best tells held-out "
                         "activating windows from silent ones (sampling.n_select) is kept")
    best_of_temperature: float = Field(0.7, gt=0, description="best_of > 1: temperature of every draw but the "
                                       "first, which keeps `temperature`")
    later_fields: ClassVar[tuple[str, ...]] = ("output_view", "steering_prompts", "best_of", "best_of_temperature")
    unnamed_fields: ClassVar[tuple[str, ...]] = ("examples",)  # never part of the explainer id

    def identity(self) -> dict:
        """As every section's, and the steering settings only where the steering view uses them."""
        fields = super().identity()
        if self.output_view != "steering":
            fields.pop("steering_prompts", None)
        if self.best_of == 1:
            fields.pop("best_of_temperature", None)
        return fields

    @model_validator(mode="after")
    def _prefill_without_reasoning(self):
        if self.prefill and self.reasoning:
            raise ValueError("explainer prefill starts the answer at its last line: set reasoning to false too")
        return self


class ScorerConfig(Section):
    """How the judge is asked. `mode`: batched (`batch_size` examples a prompt, a 0/1 list: the paper's form),
    per_example (Yes/No, P(yes) from logprobs), or auto (per_example for an in-process judge, else batched;
    resolved at load, so `autointerp config` shows which).
    `top_logprobs` > 0 asks for logprobs (P(1) per list value, P(yes) per example: the AUC).
    `max_tokens` None: 2048 batched, so a judge that reasons before its list is not cut off (the list is read
    from the end of the reply; a judge that answers at once stops after it), 1 per example."""

    mode: Literal["auto", "batched", "per_example"] = Field(
        "batched", description="auto: per_example for an in-process judge, else batched (resolved at load)")
    batch_size: int = Field(5, ge=1)
    top_logprobs: int = Field(10, ge=0)
    seed: int = Field(0, description="unless set, the root seed")
    highlight_threshold: float = Field(HIGHLIGHT_THRESHOLD, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(0.0, ge=0)
    examples_per_class: int | None = Field(
        None, ge=1, description="examples judged per class and LLM scorer; null: 5 for a local judge, else all (50)")
    unnamed_fields: ClassVar[tuple[str, ...]] = ("examples_per_class",)  # counted as judged_per_class in the id

    @property
    def examples_per_prompt(self) -> int:
        return self.batch_size if self.mode == "batched" else 1

    def answer_tokens(self) -> int:
        if self.max_tokens is not None:
            return self.max_tokens
        return 2048 if self.mode == "batched" else 1


class IntruderConfig(Section):
    """Intruder detection, scoring without an explanation (core/scorers/intruder.py): `shown` activating windows
    of a latent and one of another latent, `tasks` tasks a latent, beside as many control tasks."""

    enabled: bool = Field(True, description="score every latent by intruder detection (scorer intruder)")
    shown: int = Field(4, ge=2, description="the latent's windows a task shows, beside one intruder")
    tasks: int | None = Field(None, ge=1, description="tasks a latent, and as many control tasks; null: 3 for a "
                              "local judge, else 6")
    max_tokens: int = Field(8, ge=1, description="the judge's answer: `Intruder: <number>`")
    seed: int = Field(0, description="unless set, the root seed")


class SimulationConfig(Section):
    """OpenAI-style simulation scoring (core/scorers/simulation.py): the judge predicts every token's activation
    from the explanation; score = correlation with the true activations. Off by default: it costs one prompt of
    ~300 tokens per judged window (about 33k prompt tokens a latent with 50 + 50 windows, own and control)."""

    enabled: bool = Field(False, description="run the simulation_scores asset (a prompt per judged window)")
    max_level: int = Field(9, ge=1, le=10, description="activation scale 0..max_level in the prompt (one digit: 9)")
    mode: Literal["all_at_once", "chat"] = Field(
        "all_at_once", description="all_at_once: prompt logprobs, one forward a window (in-process, vLLM); chat: "
        "the model writes every value (chat-only APIs with top logprobs)")
    later_fields: ClassVar[tuple[str, ...]] = ("mode",)


class SubjectScorersConfig(Section):
    """Scorers that run a language model themselves instead of asking the judge: surprisal (does the explanation
    make the latent's examples more predictable?) and intervention (does steering the latent make a scoring LM
    expect the explanation?). `scoring_model` None: the subject model, loaded once for both."""

    scorers: tuple[Literal["surprisal", "intervention"], ...] = Field(
        ("surprisal", "intervention"), description="which run (empty: none)")
    scoring_model: str | None = Field(None, description="any HF causal LM (base model); null: the subject model")
    examples_per_class: int | None = Field(2, ge=1, description="surprisal: held-out examples a class; null: all")
    batch_size: int = Field(16, ge=1, description="sequences a forward pass")
    prompts: int = Field(2, ge=1, description="intervention: prompts a latent, cut where it first fires")
    completion_tokens: int = Field(8, ge=1, description="intervention: greedy tokens generated")
    kept_tokens: int = Field(10, ge=1, description="intervention: tokens whose probability rises most, kept")
    seed: int = Field(0, description="unless set, the root seed")


class SteeringConfig(Section):
    """How a latent is steered, for the intervention scorer and the output-side explainer alike: the decoder
    direction is added at a strength found by search so that the mean next-token KL(clean || steered) hits
    `kl_target`."""

    kl_target: float = Field(1.0, gt=0, description="mean next-token KL of steered from clean, nats")
    kl_tolerance: float = Field(0.1, gt=0, lt=1, description="relative: the strength search stops within it")
    search_steps: int = Field(12, ge=1, description="forward passes of the strength search")


class ModelSpec(Section):
    """The subject model: the language model whose internals are interpreted."""

    name: str = Field(EMBEDDED_MODEL, description="Hub name, folder, .gguf file or embedded:")
    alias: str | None = Field(None, description="name in coder keys (default: from `name`)")
    device: str = Field("auto", description="auto (CUDA when present, else CPU), cpu, cuda, cuda:N")
    dtype: str = Field("auto", description="auto (float32 on CPU, bfloat16 on GPUs with bf16 units) or a torch dtype")


class CodersConfig(Section):
    """Which sparse coders there are, and how each is split into latent-range partitions."""

    paths: tuple[CoderSource, ...] = Field((), description="coders by path, with optional hookpoint, name, kind, k")
    watch_dir: Path | None = Field(None, description="watched folder of coders (default: home/saes)")
    embedded: EmbeddedSaeSpec | None = Field(EmbeddedSaeSpec(), description="null: train no embedded SAEs")
    latent_ranges: int = Field(8, ge=1, le=99, description="latent-range partitions per coder")
    random_twins: bool = Field(False, description="a random-weight twin of every coder, interpreted as a control")

    @field_validator("paths", mode="before")
    @classmethod
    def _paths_as_sources(cls, value: Any) -> Any:
        """A bare path string is a coder source with everything detected."""
        return tuple({"path": str(v)} if isinstance(v, (str, Path)) else v for v in (value or ()))

    @field_validator("watch_dir")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return None if value is None else Path(value).expanduser().resolve()


class CacheConfig(Section):
    """How activations are cached."""

    batch_rows: int = Field(16, ge=1, description="corpus rows a forward pass")
    flush_records: int = Field(4_000_000, ge=1, description="records buffered before a Parquet row group")


class BaselineConfig(Section):
    """The top-tokens baseline explainer (no LLM): its explanations are scored like the LLM's."""

    tokens: int = Field(3, ge=0, description="the N most frequent peak tokens (0: no baseline)")
    judged_by: tuple[Literal["detection", "fuzzing"], ...] = Field(
        ("detection",), description="LLM scorers that judge the baseline too (embedding scores it always)")


class ChecksConfig(Section):
    """Bounds of the asset checks."""

    max_parse_failure_rate: float = Field(0.25, ge=0, le=1, description="asset checks fail above this share")
