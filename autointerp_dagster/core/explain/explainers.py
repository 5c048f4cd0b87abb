"""Explaining latents: one LLM prompt per latent, parsed, retried once, failures recorded.

All latents' prompts go to the client in one `complete` call so its concurrency keeps
the server busy, and the parse-failure retries go in a second call. An answer that
cannot be parsed twice is stored as a failure with the raw answer, never replaced by a
placeholder explanation that a scorer would then grade as if the model had said it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from autointerp_dagster.core.config import ExplainerConfig, Settings, SteeringConfig
from autointerp_dagster.core.explain.digest import LatentDigest, top_tokens_explanation
from autointerp_dagster.core.llm import ChatRequest, ChatResult, LLMClient
from autointerp_dagster.core.llm.client import ProgressCallback, offset_progress
from autointerp_dagster.core.prompts import ParseError
from autointerp_dagster.core.prompts.explainer import (
    build_explainer_messages,
    explanation_retry_message,
    parse_explanation,
    prefilled_answer,
    without_counts,
)
from autointerp_dagster.core.sampling import Example, order_for_explainer

from ..keys import stable_id

OK = "ok"
FAILED = "failed"


def explainer_id(config: ExplainerConfig, steering: SteeringConfig = SteeringConfig()) -> str:
    """A stable name for results made with `config`: "default-<hash>", "contrastive-<hash>", with "-cot"
    before the hash for the chain-of-thought variant.

    The hash covers every field, so changing any setting gives new result keys instead of
    overwriting explanations made differently (fields added later only away from their defaults:
    `Section.identity`).
    """
    fields = config.identity()
    if config.output_view == "steering" and steering.kl_target != SteeringConfig().kl_target:
        fields["steering_kl_target"] = steering.kl_target  # the steering view's KL target, named as it was stored
    digest = stable_id(fields, 8, compact=True)
    kind = "contrastive" if config.contrastive else "default"
    return f"{kind}{'-cot' if config.reasoning else ''}-{digest}"


@dataclass(frozen=True)
class ExplainerKey:
    """Who made an explanation: the explainer id, the backend and the model (with sae and latent, the key of the
    explanations table). The LLM explainer and the top-tokens baseline each have one."""

    explainer: str
    backend: str
    model: str

    @property
    def label(self) -> str:
        return f"{self.backend}:{self.model}"


BASELINE_BACKEND, BASELINE_MODEL = "none", "top-tokens"


def baseline_key(n_tokens: int) -> ExplainerKey:
    """The top-tokens baseline explainer: no LLM, the latent's `n_tokens` most frequent peak tokens."""
    return ExplainerKey(f"top-tokens-{n_tokens}", BASELINE_BACKEND, BASELINE_MODEL)


def explainer_keys(settings: Settings) -> list[ExplainerKey]:
    """The explainers a run makes explanations with: the configured LLM's, then the baseline (if enabled)."""
    keys = [ExplainerKey(explainer_id(settings.explainer, settings.steering), settings.llm.backend, settings.llm.model)]
    return keys + ([baseline_key(settings.baseline.tokens)] if settings.baseline.tokens else [])


def baseline_explanations(latents: Sequence[int], digests: dict[int, LatentDigest], n_tokens: int
                          ) -> list[ExplanationResult]:
    """The baseline's explanation of each latent, or a failure where the latent has no digest."""
    results = []
    for latent in latents:
        text = top_tokens_explanation(digests[latent], n_tokens) if latent in digests else None
        results.append(ExplanationResult(latent, OK, text, None, text) if text else
                       ExplanationResult(latent, FAILED, None, "no top tokens in the latent's digest", None))
    return results


def explanation_id(sae: str, latent: int, explainer: str, model: str, text: str | None) -> str:
    """Stable id of one explanation: scores are keyed by it, so a new explanation never inherits old scores."""
    return stable_id(f"{sae}\0{latent}\0{explainer}\0{model}\0{text}", 16)


@dataclass(frozen=True)
class ExplainItem:
    """One latent to explain: its train examples (shown in `ExplainerConfig.order`, whatever order they come
    in), for contrastive prompts hard negatives (the explainer's share, never judged by a scorer), and the
    latent's digest (shown as `ExplainerConfig.digest` says)."""

    latent: int
    train: Sequence[Example]
    hard_negatives: Sequence[Example] = ()
    digest: LatentDigest | None = None


@dataclass
class ExplanationResult:
    """The outcome for one latent. `raw_answer` is the model's last answer, kept even on failure.

    Token counts and `call_ids` (rows of the `llm_calls` log) cover the retry too.
    """

    latent: int
    status: str
    explanation: str | None
    error: str | None
    raw_answer: str | None
    call_ids: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def ok(self) -> bool:
        return self.status == OK


def explain_latents(
    client: LLMClient,
    items: Sequence[ExplainItem],
    config: ExplainerConfig = ExplainerConfig(),
    on_progress: ProgressCallback | None = None,
    sample: int = 0,
) -> list[ExplanationResult]:
    """One result per item, in order; a latent that cannot be explained is a "failed" result. `sample` numbers
    independent draws of the same prompts (best-of-k: core/explain/best_of.py)."""
    results = [ExplanationResult(item.latent, FAILED, None, None, None) for item in items]
    requests: dict[int, ChatRequest] = {}
    for i, item in enumerate(items):
        try:
            messages = build_explainer_messages(
                order_for_explainer(item.train, config.order, item.latent),
                show_activations=config.show_activations,
                few_shot=config.few_shot,
                hard_negatives=list(item.hard_negatives) if config.contrastive else None,
                highlight_threshold=config.highlight_threshold,
                reasoning=config.reasoning,
                prefill=config.prefill,
                digest=config.digest,
                top_tokens=item.digest.top_activating if item.digest else (),
                promoted=[token for token, _ in item.digest.output_side(config.output_view)] if item.digest else (),
            )
        except ValueError as exc:  # no train examples: nothing to show the model
            results[i].error = str(exc)
            continue
        requests[i] = _request(messages, config, "explain", sample)

    started = prefilled_answer(config.digest) if config.prefill else ""
    tidy = without_counts if config.digest != "none" else None
    first = _complete(client, requests, on_progress, offset=0)
    retries: dict[int, ChatRequest] = {}
    for i, answer in first.items():
        if _absorb(results[i], answer, started, tidy):
            asked = requests[i].messages[:-1] if config.prefill else requests[i].messages
            messages = asked + [{"role": "assistant", "content": results[i].raw_answer},
                                explanation_retry_message()]
            if config.prefill:
                messages.append(requests[i].messages[-1])
            retries[i] = _request(messages, config, "explain_retry", sample)
    for i, answer in _complete(client, retries, on_progress, offset=len(first)).items():
        if _absorb(results[i], answer, started, tidy):
            results[i].error = f"unparseable after one retry: {results[i].error}"
    return results


def _request(messages: list[dict], config: ExplainerConfig, purpose: str, sample: int) -> ChatRequest:
    return ChatRequest(messages, max_tokens=config.max_tokens, temperature=config.temperature, purpose=purpose,
                       stop=("\n",) if config.prefill else (), sample=sample)


def _complete(
    client: LLMClient,
    requests: dict[int, ChatRequest],
    on_progress: ProgressCallback | None,
    offset: int,
) -> dict[int, ChatResult]:
    """Sends `requests` in one batch; progress counts on after the `offset` earlier requests."""
    if not requests:
        return {}
    answers = client.complete(list(requests.values()), on_progress=offset_progress(on_progress, offset))
    return dict(zip(requests, answers))


def _absorb(result: ExplanationResult, answer: ChatResult, started: str = "", tidy=None) -> bool:
    """Adds one answer to `result`; True when it arrived but could not be parsed (retry it).

    `started` is the prefilled start of the answer, which the reply does not repeat; `tidy` cleans the parsed
    explanation (the raw answer is kept as it came).
    """
    result.call_ids.append(answer.call_id)
    result.prompt_tokens += answer.tokens_in
    result.completion_tokens += answer.tokens_out
    if not answer.ok:
        result.status, result.error = FAILED, answer.error or "LLM request failed"
        return False
    result.raw_answer = started + (answer.text or "")
    try:
        if started and not (answer.text or "").strip():
            raise ParseError("nothing after the prefilled start of the answer")
        result.explanation = parse_explanation(result.raw_answer)
        if tidy:
            result.explanation = tidy(result.explanation)
    except ParseError as exc:
        result.status, result.error = FAILED, str(exc)
        return True
    result.status, result.error = OK, None
    return False
