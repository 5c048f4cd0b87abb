"""Intervention scoring (the paper's output-side score): does steering along the latent make a scoring LM find the
explanation more likely?

For each latent, prompts are held-out activating windows cut just after the latent first fires. The latent's
decoder direction is added at its hookpoint with the strength that makes the mean next-token KL(clean ||
steered) hit `kl_target` (core/steering.py); short greedy completions are generated clean and steered. The score
is the mean over prompts of log P(explanation | steered completion) - log P(explanation | clean completion) under
the scoring LM (`log_prob_gain`, nats, with an interval over prompts; `log_prob_gain_per_token` divides it by
the explanation's length in tokens, so that explanations of different lengths compare); AUC ranks steered against clean
completions by the same log P. Controls: the shuffled explanation (another latent's, the control every scorer
shares) scored on this latent's completions, and a random other latent steered with the same search and scored
with this latent's explanation (`random_latent`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from autointerp_dagster.core.config import SteeringConfig, SubjectScorersConfig
from autointerp_dagster.core.models.lm_logprobs import continuation_logprobs, token_ids
from autointerp_dagster.core.models.steering import Steerer, prompt_ids
from autointerp_dagster.core.models.subject import SubjectModel
from autointerp_dagster.core.reporting.metrics import mean_ci
from autointerp_dagster.core.sampling import evenly_spaced, stable_key_hash
from autointerp_dagster.core.scorers.common import (
    INTERVENTION,
    Judgment,
    LatentScore,
    ScoringExample,
    summarise,
    top_share,
)
from autointerp_dagster.core.scorers.runs import OWN, ScoringTask

RANDOM_LATENT = "random_latent"
# What the scoring LM reads before the explanation: the generated text only (the prompt is the same clean and
# steered, so it would only dilute the difference).
SCORING_TEMPLATE = 'Text: "{completion}"\nThe text above is about:'


@dataclass
class SteeredLatent:
    """One steered latent on one latent's prompts: the strength found and what it did."""

    latent: int  # whose prompts
    steered_latent: int  # whose direction (the latent itself, or the random-latent control)
    control: str
    strength: float
    kl: float
    search_steps: int
    prompts: list[ScoringExample]
    clean: list[str]
    steered: list[str]
    promoted: list[tuple[str, float]] = field(default_factory=list)  # (token, mean probability gain)


def random_latent(sae: str, latent: int, n_latents: int, seed: int) -> int:
    """Another latent of the coder, drawn with a generator seeded by the SAE and the latent."""
    rng = np.random.default_rng([seed, stable_key_hash(sae), latent, 1])
    other = int(rng.integers(n_latents - 1))
    return other + (other >= latent)


def steer(subject: SubjectModel, module: str, prompts: list[ScoringExample], directions: dict[int, torch.Tensor],
          latent: int, control_latent: int, config: SubjectScorersConfig,
          steering: SteeringConfig) -> tuple[SteeredLatent, SteeredLatent]:
    """The latent and its random-latent control, each steered on the latent's prompts at the KL target."""
    steerer = Steerer(subject, [prompt_ids(subject, p.example) for p in prompts], module)
    decode = subject.tokenizer.decode
    clean = [decode(ids) for ids in steerer.generate(None, config.completion_tokens)]
    results = []
    for steered_latent, control in ((latent, OWN), (control_latent, RANDOM_LATENT)):
        direction = directions[steered_latent]
        found = steerer.search(direction, steering.kl_target, steering.kl_tolerance, steering.search_steps)
        vector = direction * found.strength
        steered = [decode(ids) for ids in steerer.generate(vector, config.completion_tokens)]
        promoted = [(decode([i]), gain) for i, gain in steerer.promoted(vector, config.kept_tokens)]
        results.append(SteeredLatent(latent, steered_latent, control, found.strength, found.kl, found.steps,
                                     prompts, clean, steered, promoted))
    return results[0], results[1]


def intervention_scores(subject: SubjectModel, scorer: SubjectModel, module: str,
                        directions: dict[int, torch.Tensor], tasks: Sequence[ScoringTask], sae: str, n_latents: int,
                        config: SubjectScorersConfig, steering: SteeringConfig = SteeringConfig(),
                        ) -> tuple[list[ScoringTask], list[LatentScore], list[SteeredLatent]]:
    """Scores for every task (own and shuffled explanation) and a random-latent control task per latent.
    `directions`: unit decoder directions of the tasks' latents and of their random-latent controls
    (`random_latent`); tasks whose latent has no prompt where it fires are recorded as failed."""
    out_tasks, scores, steered_rows = [], [], []
    by_latent: dict[int, list[ScoringTask]] = {}
    for task in tasks:
        by_latent.setdefault(task.item.latent, []).append(task)
    for latent, latent_tasks in by_latent.items():
        prompts = [p for p in evenly_spaced(latent_tasks[0].item.activating, config.prompts,
                                            key=lambda s: s.example.quantile)
                   if prompt_ids(subject, p.example) is not None]
        own = next(t for t in latent_tasks if t.control == OWN)
        control = ScoringTask(own.item, own.explanation_id, RANDOM_LATENT,
                              random_latent(sae, latent, n_latents, config.seed))
        if not prompts:
            for task in (*latent_tasks, control):
                out_tasks.append(task)
                scores.append(_failed(latent, "no activating example to prompt with"))
            continue
        mine, other = steer(subject, module, prompts, directions, latent, control.control_latent, config, steering)
        steered_rows += [mine, other]
        for task, steered in [(t, mine) for t in latent_tasks] + [(control, other)]:
            out_tasks.append(task)
            scores.append(_score(scorer, task.item.explanation, steered, config))
    return out_tasks, scores, steered_rows


def _score(scorer: SubjectModel, explanation: str, steered: SteeredLatent, config: SubjectScorersConfig) -> LatentScore:
    if not (explanation and explanation.strip()):
        return _failed(steered.latent, "no explanation to score")
    target = token_ids(scorer, " " + explanation.strip())
    contexts = [token_ids(scorer, SCORING_TEMPLATE.format(completion=c), bos=True)
                for c in (*steered.steered, *steered.clean)]
    logprobs = [float(lp.sum()) for lp in continuation_logprobs(scorer, contexts, [target] * len(contexts),
                                                                config.batch_size)]
    n = len(steered.prompts)
    steered_lp, clean_lp = np.array(logprobs[:n]), np.array(logprobs[n:])
    values = np.concatenate([steered_lp, clean_lp])
    labels = [1] * n + [0] * n
    predictions = top_share(values, n)
    judgments = [Judgment(p.set_name, p.idx, label, int(pred), float(v))
                 for p, label, pred, v in zip([*steered.prompts, *steered.prompts], labels, predictions, values)]
    score = summarise(steered.latent, INTERVENTION, judgments, seed=config.seed)
    score.log_prob_gain, score.log_prob_gain_ci_low, score.log_prob_gain_ci_high = mean_ci(
        steered_lp - clean_lp, seed=config.seed)
    # A longer explanation sums more tokens' gains, so own - shuffled of the sum partly measures length.
    score.log_prob_gain_per_token = score.log_prob_gain / len(target)
    return score


def _failed(latent: int, reason: str) -> LatentScore:
    score = summarise(latent, INTERVENTION, [])
    score.error = reason
    return score
