"""Intruder detection (Paulo & Belrose 2025, "Evaluating SAE interpretability without explanations"): scoring
that needs no explanation, so it rates the latent itself, for SAEs and neurons alike.

The judge sees `shown` held-out activating windows of a latent and one activating window of another latent of the
same coder, in random order, and names the window that does not belong. A latent whose windows share something
the judge can see scores above chance, 1 / (shown + 1). The control asks the same of windows that share nothing:
each of `shown + 1` different latents, with a position called the intruder at random; what the judge scores there
is chance plus its bias (e.g. for a position). Each latent gets `tasks` tasks of each kind, drawn with a seed per
latent, and an accuracy with a Wilson interval over its tasks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import binomtest

from autointerp_dagster.core.llm import ChatRequest, LLMClient
from autointerp_dagster.core.llm.client import ProgressCallback
from autointerp_dagster.core.prompts import ParseError
from autointerp_dagster.core.prompts.intruder import build_intruder_messages, parse_intruder
from autointerp_dagster.core.sampling import Example
from autointerp_dagster.core.scorers.common import FAILED, MAX_FAILED_SHARE, OK

INTRUDER = "intruder"
OWN, MIXED = "none", "mixed"  # the `control` column: the latent's own windows, or windows of as many latents


@dataclass(frozen=True)
class IntruderTask:
    latent: int
    control: str
    windows: tuple[Example, ...]
    intruder: int  # the position of the window that does not belong (in a control: drawn at random)
    sources: tuple[int, ...]  # the latent each window is an activating window of


@dataclass
class IntruderScore:
    """One latent's accuracy on its own tasks (`control` none) or on the control's (`mixed`)."""

    latent: int
    control: str
    status: str
    correct: int = 0
    answered: int = 0
    failed: int = 0
    accuracy: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    chance: float = 0.0
    error: str | None = None
    call_ids: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0


def intruder_tasks(windows: Mapping[int, Sequence[Example]], latents: Sequence[int], shown: int, tasks: int,
                   seed: int) -> list[IntruderTask]:
    """`windows`: held-out activating windows of every latent of the coder (the intruders come from them);
    `latents`: those to score. A latent with fewer than `shown` windows, or a coder with too few latents, gets
    no tasks of that kind (its score says so)."""
    pool = {latent: list(ws) for latent, ws in windows.items() if ws}
    found = []
    for latent in latents:
        rng = np.random.default_rng([seed, latent])
        own = pool.get(latent, [])
        others = sorted(set(pool) - {latent})
        if len(own) >= shown and others:
            for _ in range(tasks):
                chosen = [own[i] for i in rng.choice(len(own), shown, replace=False)]
                stranger = int(others[rng.integers(len(others))])
                at = int(rng.integers(shown + 1))
                chosen.insert(at, pool[stranger][rng.integers(len(pool[stranger]))])
                sources = [latent] * shown
                sources.insert(at, stranger)
                found.append(IntruderTask(latent, OWN, tuple(chosen), at, tuple(sources)))
        if own and len(others) >= shown:
            for _ in range(tasks):  # this latent's window among those of `shown` others: no group to find
                mixed = [latent] + [int(x) for x in rng.choice(others, shown, replace=False)]
                order = rng.permutation(len(mixed))
                sources = tuple(mixed[i] for i in order)
                chosen = tuple(pool[s][rng.integers(len(pool[s]))] for s in sources)
                found.append(IntruderTask(latent, MIXED, chosen, int(rng.integers(shown + 1)), sources))
    return found


def score_intruders(client: LLMClient, tasks: Sequence[IntruderTask], latents: Sequence[int], max_tokens: int,
                    on_progress: ProgressCallback | None = None) -> list[IntruderScore]:
    """Asks the judge every task (one request each, cached) and scores each latent and kind; a latent without
    tasks of a kind gets a failed score saying why."""
    requests = [ChatRequest(messages=build_intruder_messages([w.tokens for w in t.windows]), max_tokens=max_tokens,
                            purpose=INTRUDER) for t in tasks]
    answers = client.complete(requests, on_progress=on_progress) if requests else []
    scores = {(latent, kind): IntruderScore(latent, kind, OK) for latent in latents for kind in (OWN, MIXED)}
    for task, answer in zip(tasks, answers):
        score = scores[(task.latent, task.control)]
        score.chance = 1 / len(task.windows)
        score.call_ids += [answer.call_id] if answer.call_id else []
        score.prompt_tokens += answer.tokens_in
        score.completion_tokens += answer.tokens_out
        if not answer.ok:
            score.failed += 1
            score.error = answer.error
            continue
        try:
            picked = parse_intruder(answer.text, len(task.windows))
        except ParseError as exc:
            score.failed += 1
            score.error = str(exc)
            continue
        score.answered += 1
        score.correct += int(picked == task.intruder)
    for score in scores.values():
        asked = score.answered + score.failed
        if asked == 0:
            score.status, score.error = FAILED, ("too few activating windows or latents for intruder tasks"
                                                 if score.error is None else score.error)
        elif score.failed > MAX_FAILED_SHARE * asked or score.answered == 0:
            score.status = FAILED
        else:
            score.error = None
            score.accuracy = score.correct / score.answered
            interval = binomtest(score.correct, score.answered).proportion_ci(method="wilson")
            score.ci_low, score.ci_high = float(interval.low), float(interval.high)
    return list(scores.values())


def intruder_rows(sae: str, scores: Sequence[IntruderScore], keys: Mapping) -> list[dict]:
    """`scores` rows (scorer intruder, no explanation); `keys`: judge, scorer_config, created_at."""
    return [{
        "sae": sae, "latent": s.latent, "scorer": INTRUDER, "explanation_id": None, "explainer": None,
        "explainer_model": None, "mode": INTRUDER, "control": s.control, "control_latent": None, "status": s.status,
        "error": s.error, "accuracy": s.accuracy, "ci_low": s.ci_low, "ci_high": s.ci_high,
        "n_examples": s.answered + s.failed, "n_failed": s.failed, "true_positive": s.correct,
        "call_ids": s.call_ids, "prompt_tokens": s.prompt_tokens, "completion_tokens": s.completion_tokens, **keys,
    } for s in scores]
