"""One pass of the scorers that read a language model themselves (surprisal, intervention) over a latent range's
scoring tasks: what the `subject_model_scores` asset and the bench share."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from autointerp_dagster.core.coders import SparseCoder
from autointerp_dagster.core.coders.decoders import steering_site
from autointerp_dagster.core.config import SteeringConfig, SubjectScorersConfig
from autointerp_dagster.core.keys import stable_id
from autointerp_dagster.core.models.subject import SubjectModel
from autointerp_dagster.core.scorers.common import INTERVENTION, SURPRISAL, LatentScore
from autointerp_dagster.core.scorers.intervention import (
    SteeredLatent,
    intervention_scores,
    random_latent,
)
from autointerp_dagster.core.scorers.runs import ScoringTask, judged_subset
from autointerp_dagster.core.scorers.surprisal import surprisal_scores


def subject_scorer_config_id(config: SubjectScorersConfig, steering: SteeringConfig, negatives: str,
                             control_seed: int | None = None) -> str:
    """Names everything that shapes these scores (which scorers ran is the rows' own column), under the names the
    settings had when stored ids were first made (the steering search lived in this section). `control_seed`
    (scoring.seed: it picks the shuffled explanation of every scorer) is named only where it differs from this
    section's seed, which picked it before, so ids stored then stay valid."""
    named = {**config.model_dump(exclude={"scorers", "kept_tokens"}), "promoted_tokens": config.kept_tokens,
             "kl_target": steering.kl_target, "kl_tolerance": steering.kl_tolerance,
             "search_steps": steering.search_steps, "negatives": negatives}
    if control_seed is not None and control_seed != config.seed:
        named["control_seed"] = control_seed
    return "subject-" + stable_id(named, 8)


@dataclass
class SubjectScoring:
    """Per scorer, its (task, score) pairs; the steered latents; wall and CPU seconds spent per scorer (CPU time
    counts every thread, so on a machine shared with other jobs it measures the work, not the wait)."""

    scored: dict[str, list[tuple[ScoringTask, LatentScore]]] = field(default_factory=dict)
    steered: list[SteeredLatent] = field(default_factory=list)
    module: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)


def score_with_language_models(subject: SubjectModel, scorer: SubjectModel, coder: SparseCoder | None, sae: str,
                               tasks: Sequence[ScoringTask], config: SubjectScorersConfig,
                               steering: SteeringConfig = SteeringConfig()) -> SubjectScoring:
    """Runs the configured scorers; `coder` is needed for intervention only (its decoder directions)."""
    out = SubjectScoring()
    if SURPRISAL in config.scorers and tasks:
        began, cpu = time.perf_counter(), time.process_time()
        scores = surprisal_scores(scorer, judged_subset(tasks, config.examples_per_class), config.batch_size,
                                  config.seed)
        out.scored[SURPRISAL] = list(zip(tasks, scores))
        out.seconds[SURPRISAL] = time.perf_counter() - began
        out.cpu_seconds[SURPRISAL] = time.process_time() - cpu
    if INTERVENTION in config.scorers and tasks:
        if coder is None:
            raise ValueError("intervention scoring needs the sparse coder (its decoder directions)")
        began, cpu = time.perf_counter(), time.process_time()
        latents = sorted({t.item.latent for t in tasks})
        controls = [random_latent(sae, latent, coder.n_latents, config.seed) for latent in latents]
        site = steering_site(coder, sorted(set(latents + controls)), subject.body)
        all_tasks, scores, out.steered = intervention_scores(
            subject, scorer, site.module, dict(zip(site.latents, site.directions)), tasks, sae, coder.n_latents,
            config, steering)
        out.scored[INTERVENTION] = list(zip(all_tasks, scores))
        out.module = site.module
        out.seconds[INTERVENTION] = time.perf_counter() - began
        out.cpu_seconds[INTERVENTION] = time.process_time() - cpu
    return out
