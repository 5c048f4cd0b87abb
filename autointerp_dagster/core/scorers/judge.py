"""Detection and fuzzing: an LLM judge checks an explanation against held-out examples.

Detection judges the activating examples (label 1) against the negatives (label 0). Fuzzing
judges the activating windows only, each shown marked where the latent fires (1) and
mis-marked (0), the paper's token-level precision (see fuzzing.py; the item's negatives play
no part). Both share everything else: cases are ordered per latent with a seeded generator (so
every prompt mixes classes and a re-run sends identical prompts, which the response cache then
answers), all prompts of all latents go to the client in one batch, and each unparseable answer
gets one retry that shows the model its answer and restates the format. Examples still unjudged
after that are recorded as failures and left out of the metrics; nothing is guessed.

Modes:
- "batched": `batch_size` examples a prompt, answered with a 0/1 list (the paper's set-up).
  The token budget is generous (ScorerConfig.answer_tokens) so a judge that reasons first
  still reaches its list, which is read from the end of the reply; with logprobs, P(1) at each
  value's token gives the AUC.
- "per_example": one prompt per example answered Yes/No. With logprobs, P(yes) from the
  first generated token gives the prediction (P >= 0.5) and the AUC.
A server without logprobs gives hard answers only, and so no AUC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from autointerp_dagster.core.config import ScorerConfig
from autointerp_dagster.core.llm import ChatRequest, ChatResult, LLMClient
from autointerp_dagster.core.llm.client import ProgressCallback, offset_progress
from autointerp_dagster.core.prompts import ParseError
from autointerp_dagster.core.prompts.judge import (
    build_detection_messages,
    build_detection_single_messages,
    build_fuzzing_messages,
    build_fuzzing_single_messages,
    list_probabilities,
    parse_binary_list,
    parse_yes_no,
    yes_probability,
)
from autointerp_dagster.core.scorers.common import (
    DETECTION,
    FUZZING,
    Judgment,
    LatentScore,
    ScoreItem,
    summarise,
)
from autointerp_dagster.core.scorers.fuzzing import Case, fuzz_cases

BATCHED = "batched"
PER_EXAMPLE = "per_example"


@dataclass
class _Prompt:
    """One request and the positions (in its item's case list) it judges."""

    item: int
    positions: list[int]
    request: ChatRequest


@dataclass
class _Usage:
    """What one latent's prompts cost, retries included."""

    call_ids: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0


def score_latents(
    client: LLMClient,
    scorer: str,
    items: Sequence[ScoreItem],
    config: ScorerConfig = ScorerConfig(),
    on_progress: ProgressCallback | None = None,
) -> list[LatentScore]:
    """One LatentScore per item, in order, from one batch of prompts plus one of retries."""
    if scorer not in (DETECTION, FUZZING):
        raise ValueError(f"scorer must be {DETECTION!r} or {FUZZING!r}, not {scorer!r}")
    if config.mode not in (BATCHED, PER_EXAMPLE):
        raise ValueError(f"scorer mode {config.mode!r} must be resolved first (Settings.scorer_config)")
    cases: list[list[Case]] = []
    unplanned: dict[int, str] = {}  # latents sent no prompt, and why
    prompts: list[_Prompt] = []
    for i, item in enumerate(items):
        item_cases = _nominal_cases(item, scorer)
        if not (item.explanation and item.explanation.strip()):
            unplanned[i] = "no explanation to score"
        else:
            try:
                built = _cases(item, scorer, config)
                prompts += _plan(i, item.explanation, built, scorer, config)
                item_cases = built
            except ValueError as exc:  # e.g. a negative latent id cannot seed the generator
                unplanned[i] = f"could not build prompts: {exc}"
        cases.append(item_cases)
    verdicts: list[list[Judgment | None]] = [[None] * len(c) for c in cases]
    usage = [_Usage() for _ in items]

    first = _complete(client, prompts, on_progress, offset=0)
    retries = []
    for prompt, answer in zip(prompts, first):
        if _absorb(prompt, answer, cases, verdicts, usage, config, final=False):
            retries.append(_retry(prompt, answer.text or "", scorer, config))
    second = _complete(client, retries, on_progress, offset=len(prompts))
    for prompt, answer in zip(retries, second):
        _absorb(prompt, answer, cases, verdicts, usage, config, final=True)

    scores = []
    for i, item in enumerate(items):
        judgments = [
            verdict or _failed(case, unplanned[i]) for verdict, case in zip(verdicts[i], cases[i])
        ]
        u = usage[i]
        scores.append(
            summarise(item.latent, scorer, judgments, u.call_ids, u.prompt_tokens,
                      u.completion_tokens, seed=config.seed)
        )
    return scores


def _nominal_cases(item: ScoreItem, scorer: str) -> list[Case]:
    """The cases an item would have, for recording failures when none could be built."""
    if scorer == FUZZING:
        pairs = [(e, 1) for e in item.activating] + [(e, 0) for e in item.activating]
    else:
        pairs = item.labelled()
    return [Case(e, e.example, (), label) for e, label in pairs]


def _cases(item: ScoreItem, scorer: str, config: ScorerConfig) -> list[Case]:
    """The item's cases in the order they are cut into prompts (seeded per latent)."""
    if scorer == FUZZING:
        rng = np.random.default_rng([config.seed, item.latent, 1])
        return fuzz_cases(item.activating, rng, config.highlight_threshold)
    cases = _nominal_cases(item, scorer)
    order = np.random.default_rng([config.seed, item.latent, 0]).permutation(len(cases))
    return [cases[p] for p in order]


def _plan(i: int, explanation: str, cases: list[Case], scorer: str, config: ScorerConfig) -> list[_Prompt]:
    """The item's prompts: consecutive runs of its cases."""
    size = config.examples_per_prompt
    prompts = []
    for start in range(0, len(cases), size):
        positions = list(range(start, min(start + size, len(cases))))
        shown = [cases[p].shown for p in positions]
        marks = [cases[p].marks for p in positions]
        if config.mode == BATCHED:
            messages = (
                build_detection_messages(explanation, shown)
                if scorer == DETECTION
                else build_fuzzing_messages(explanation, shown, marks)
            )
        else:
            messages = (
                build_detection_single_messages(explanation, shown[0])
                if scorer == DETECTION
                else build_fuzzing_single_messages(explanation, shown[0], marks[0])
            )
        prompts.append(_Prompt(i, positions, _request(messages, scorer, config)))
    return prompts


def _request(messages: list[dict], purpose: str, config: ScorerConfig) -> ChatRequest:
    return ChatRequest(
        messages,
        max_tokens=config.answer_tokens(),
        temperature=config.temperature,
        logprobs=config.top_logprobs > 0,
        top_logprobs=config.top_logprobs,
        purpose=purpose,
    )


def _retry(prompt: _Prompt, answer: str, scorer: str, config: ScorerConfig) -> _Prompt:
    """The same prompt with the bad answer and a restatement of the format appended."""
    n = len(prompt.positions)
    if config.mode == BATCHED:
        again = (
            f"Your answer did not end with a list of exactly {n} values. Reply with only a JSON "
            f"list of {n} values, each 0 or 1, one per example in order."
        )
    else:
        again = "Your answer was not Yes or No. Reply with one word: Yes or No."
    messages = prompt.request.messages + [
        {"role": "assistant", "content": answer},
        {"role": "user", "content": again},
    ]
    return _Prompt(prompt.item, prompt.positions, _request(messages, f"{scorer}_retry", config))


def _complete(
    client: LLMClient, prompts: list[_Prompt], on_progress: ProgressCallback | None, offset: int
) -> list[ChatResult]:
    """Sends the prompts in one batch; progress counts on after the `offset` earlier requests."""
    if not prompts:
        return []
    return client.complete([p.request for p in prompts], on_progress=offset_progress(on_progress, offset))


def _absorb(
    prompt: _Prompt,
    answer: ChatResult,
    cases: list[list[Case]],
    verdicts: list[list[Judgment | None]],
    usage: list[_Usage],
    config: ScorerConfig,
    final: bool,
) -> bool:
    """Records the answer's verdicts; True when it could not be parsed and should be retried.

    A transport failure (the client already retried) or a failed retry (`final`) marks
    the prompt's examples as failed instead.
    """
    u = usage[prompt.item]
    u.call_ids.append(answer.call_id)
    u.prompt_tokens += answer.tokens_in
    u.completion_tokens += answer.tokens_out
    judged = [cases[prompt.item][p] for p in prompt.positions]
    error = answer.error or "LLM request failed"
    if answer.ok:
        try:
            readings = _read(answer, len(judged), config)
        except ParseError as exc:
            if not final:
                return True
            error = f"unparseable after one retry: {exc}"
        else:
            for p, case, (prediction, probability) in zip(prompt.positions, judged, readings):
                verdicts[prompt.item][p] = Judgment(
                    case.source.set_name, case.source.idx, case.label, prediction, probability
                )
            return False
    for p, case in zip(prompt.positions, judged):
        verdicts[prompt.item][p] = _failed(case, error)
    return False


def _read(answer: ChatResult, n: int, config: ScorerConfig) -> list[tuple[int, float | None]]:
    """(prediction, P(1) or None) per example in the prompt; raises ParseError."""
    text = answer.text or ""
    if config.mode == BATCHED:
        values = parse_binary_list(text, n)
        probabilities = list_probabilities(text, answer.top_logprobs, n) or [None] * n
        return list(zip(values, probabilities))
    if answer.top_logprobs:
        p_yes = yes_probability(answer.top_logprobs[0])
        if p_yes is not None:
            return [(int(p_yes >= 0.5), p_yes)]
    return [(parse_yes_no(text), None)]


def _failed(case: Case, error: str) -> Judgment:
    return Judgment(case.source.set_name, case.source.idx, case.label, None, None, error)
