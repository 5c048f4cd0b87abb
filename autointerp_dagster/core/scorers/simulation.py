"""Simulation scoring (OpenAI's automated interpretability): from the explanation alone, an LLM predicts every
token's activation in each held-out window; the score is the Pearson correlation between the predicted and the
true activations over all tokens of the latent's activating windows and its negatives (true 0), pooled.

A prediction is an expected value: the LLM's probabilities of the digits 0..max_level at a token's activation
slot, renormalised over the digits it returned, weight their values. Two ways to read them (`mode`):
- "all_at_once": every slot of a window from one forward pass over a prompt with placeholders, which needs
  logprobs inside a prompt (`LLMClient.score_prompts`: the in-process backends, or a completions endpoint with
  `echo`, as vLLM serves). One prompt per window, nothing generated.
- "chat": for chat-only APIs (OpenAI's chat models, most hosted routers), which return logprobs of generated
  tokens only: the model writes the window's `token<TAB>N` lines itself and each N's distribution is that
  token's top logprobs (core/prompts/simulation.py). It costs ~4 generated tokens per window token, and a
  reply that skips or adds a line is recorded as a failed window.

The interval is a percentile bootstrap over windows (activating and negative windows resampled separately),
computed from per-window sums so each resample costs a few additions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from autointerp_dagster.core.llm import ChatRequest, LLMClient
from autointerp_dagster.core.llm.types import (
    ERROR,
    ChatResult,
    PromptScoreRequest,
    PromptScoreResult,
    supports_prompt_logprobs,
)
from autointerp_dagster.core.prompts import ParseError
from autointerp_dagster.core.prompts.simulation import (
    chat_answer_tokens,
    chat_slot_logprobs,
    simulation_chat_messages,
    simulation_prompt,
)
from autointerp_dagster.core.scorers.common import (
    FAILED,
    MAX_FAILED_SHARE,
    Judgment,
    LatentScore,
    ScoreItem,
)

SIMULATION = "simulation"
ALL_AT_ONCE = "all_at_once"
CHAT = "chat"
CHAT_TOP_LOGPROBS = 20  # OpenAI's cap; the digits 0-9 are nearly always among them at a value slot
CHAT_ONLY = ("simulation mode all_at_once needs logprobs inside a prompt (an in-process judge, or a server with a "
             "completions endpoint that echoes prompt logprobs, such as vLLM); for a chat-only API set "
             "simulation.mode: chat")


def expected_value(logprobs: dict[str, float] | None) -> float:
    """Mean of the digit values under the returned digits' renormalised probabilities; NaN when none came back."""
    values = [(int(token), np.exp(lp)) for token, lp in (logprobs or {}).items() if token.isdigit()]
    total = sum(p for _, p in values)
    return sum(v * p for v, p in values) / total if total > 0 else float("nan")


def simulation_scores(client: LLMClient, items: Sequence[ScoreItem], max_level: int, seed: int = 0,
                      on_progress=None, mode: str = ALL_AT_ONCE) -> list[LatentScore]:
    """One LatentScore per item, in order; every window of every item in one batch of requests."""
    if mode not in (ALL_AT_ONCE, CHAT):
        raise ValueError(f"simulation mode must be {ALL_AT_ONCE!r} or {CHAT!r}, not {mode!r}")
    if mode == ALL_AT_ONCE and not supports_prompt_logprobs(client.backend):
        return [_failed(item, CHAT_ONLY) for item in items]
    windows = [item.labelled() if item.explanation and item.explanation.strip() else [] for item in items]
    simulated = [(item.explanation, e.example.tokens) for item, pairs in zip(items, windows) for e, _ in pairs]
    if not simulated:
        results = iter([])
    elif mode == CHAT:
        results = iter(_chat_simulations(client, simulated, max_level, on_progress))
    else:
        results = iter(_prompt_simulations(client, simulated, max_level, on_progress))
    scores = []
    for item, pairs in zip(items, windows):
        if not pairs:
            scores.append(_failed(item, "no explanation to simulate" if item.labelled() else "no examples"))
            continue
        scores.append(_score(item, [(e, label, next(results)) for e, label in pairs], max_level, seed, mode))
    return scores


def _prompt_simulations(client: LLMClient, windows: list[tuple[str, Sequence[str]]], max_level: int,
                        on_progress) -> list[PromptScoreResult]:
    candidates = tuple(str(level) for level in range(max_level + 1))
    requests = []
    for explanation, tokens in windows:
        prompt = simulation_prompt(explanation, tokens, max_level)
        requests.append(PromptScoreRequest(prompt.text, prompt.offsets, candidates, purpose=SIMULATION))
    return client.score_prompts(requests, on_progress)


def _chat_simulations(client: LLMClient, windows: list[tuple[str, Sequence[str]]], max_level: int,
                      on_progress) -> list[PromptScoreResult]:
    """The chat form's replies, read into the all-at-once form's results (a slot's digit logprobs per token)."""
    requests = [ChatRequest(simulation_chat_messages(explanation, tokens, max_level),
                            max_tokens=chat_answer_tokens(len(tokens)), logprobs=True,
                            top_logprobs=CHAT_TOP_LOGPROBS, purpose=SIMULATION) for explanation, tokens in windows]
    replies = client.complete(requests, on_progress=on_progress)
    return [_read_chat(reply, len(tokens), max_level) for reply, (_, tokens) in zip(replies, windows)]


def _read_chat(reply: ChatResult, n_tokens: int, max_level: int) -> PromptScoreResult:
    status, error, slots = reply.status, reply.error, None
    if reply.ok:
        try:
            slots = chat_slot_logprobs(reply.top_logprobs, n_tokens, max_level)
        except ParseError as exc:
            status, error = ERROR, f"unreadable simulation: {exc}"
    return PromptScoreResult(slots, status, error, reply.tokens_in, reply.latency_s, reply.cached, reply.call_id)


def _failed(item: ScoreItem, error: str) -> LatentScore:
    judgments = [Judgment(e.set_name, e.idx, label, None, None, error) for e, label in item.labelled()]
    return LatentScore(item.latent, SIMULATION, None, None, None, len(judgments), len(judgments), judgments,
                       status=FAILED, error=error)


def _score(item: ScoreItem, simulated: list, max_level: int, seed: int, mode: str) -> LatentScore:
    judgments, sums, labels, call_ids, tokens_in, errors = [], [], [], [], 0, []
    for example, label, result in simulated:
        call_ids.append(result.call_id)
        tokens_in += result.tokens_in
        predicted = np.array([expected_value(lp) for lp in result.logprobs or ()], dtype=float)
        true = np.asarray(example.example.normalized, dtype=float)
        error = result.error if not result.ok else None
        if error is None and (len(predicted) != len(true) or np.isnan(predicted).mean() > MAX_FAILED_SHARE):
            error = "most activation slots were not token boundaries, or no digit came back"
        if error is not None:
            errors.append(error)
            judgments.append(Judgment(example.set_name, example.idx, label, None, None, error))
            continue
        kept = ~np.isnan(predicted)
        t, p = true[kept], predicted[kept]
        sums.append([len(t), t.sum(), p.sum(), (t * t).sum(), (p * p).sum(), (t * p).sum()])
        labels.append(label)
        top = float(p.max()) if len(p) else 0.0
        judgments.append(Judgment(example.set_name, example.idx, label, int(round(top)), top / max_level))
    score = LatentScore(item.latent, SIMULATION, None, None, None, len(judgments), len(errors), judgments,
                        call_ids=call_ids, prompt_tokens=tokens_in)
    if not sums or len(errors) > MAX_FAILED_SHARE * len(judgments):
        score.status = FAILED
        score.error = f"{len(errors)} of {len(judgments)} windows could not be simulated" + (
            f": {errors[0]}" if errors else "") + (f" ({CHAT_ONLY})" if errors and mode == ALL_AT_ONCE else "")
        return score
    sums = np.array(sums)
    correlation = _pearson(sums.sum(axis=0, keepdims=True))[0]
    if np.isnan(correlation):
        score.status = FAILED
        score.error = "the true activations are constant over the windows: nothing to correlate with"
        return score
    score.correlation = float(correlation)
    score.correlation_ci_low, score.correlation_ci_high = _bootstrap(sums, np.array(labels), seed)
    return score


def _pearson(sums: np.ndarray) -> np.ndarray:
    """Pearson correlation per row of pooled sums (n, Σt, Σp, Σt², Σp², Σtp). A constant simulation explains
    none of the variance: 0 (not undefined, so a control that predicts nothing is scored, not dropped); NaN
    where the true activations are constant (nothing to explain)."""
    n, st, sp, stt, spp, stp = sums.T
    cov = stp - st * sp / n
    var_t, var_p = stt - st * st / n, spp - sp * sp / n
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(var_p > 1e-9 * np.maximum(spp, 1.0), cov / np.sqrt(var_t * var_p), 0.0)
    return np.where(var_t > 1e-9, np.clip(r, -1.0, 1.0), np.nan)


def _bootstrap(sums: np.ndarray, labels: np.ndarray, seed: int, n_boot: int = 1000,
               alpha: float = 0.05) -> tuple[float | None, float | None]:
    """Percentile interval of the pooled correlation, windows resampled within each class."""
    rng = np.random.default_rng(seed)
    totals = np.zeros((n_boot, sums.shape[1]))
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        totals += sums[members[rng.integers(0, len(members), size=(n_boot, len(members)))]].sum(axis=1)
    r = _pearson(totals)
    r = r[~np.isnan(r)]
    if len(r) < n_boot / 2:
        return None, None
    low, high = np.quantile(r, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)
