"""Surprisal scoring (the paper's; delphi `scorers/surprisal`): does the explanation make the latent's activating
examples more predictable to a base LM than its non-activating ones?

Each held-out example's text is read by a base causal LM after a few-shot prompt that ends with a description:
once the explanation, once the neutral "Various unrelated sentences.". An example's score is the reduction of
its mean per-token loss (nats) that the explanation brings; AUC of that score, activating vs not, is this
scorer's number. No judge is asked, so it runs on the subject model itself by default. The neutral losses
depend only on the examples, so a latent's own and shuffled explanations share them; each description's
few-shot prefix runs once and its key-value cache serves every batch of examples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from autointerp_dagster.core.models.lm_logprobs import shared_prefix_logprobs, token_ids
from autointerp_dagster.core.models.subject import SubjectModel
from autointerp_dagster.core.scorers.common import (
    SURPRISAL,
    Judgment,
    LatentScore,
    ScoreItem,
    summarise,
    top_share,
)

NEUTRAL_DESCRIPTION = "Various unrelated sentences."
# Few-shot pairs of a description and sentences it fits, so that a base model learns that the sentences follow
# their description (our own; delphi's are longer).
FEW_SHOT = (
    ("Mentions of animals, especially farm animals.",
     ("The cows were brought in from the field before the storm.", "He sold two sheep and a goat at the market.")),
    ("The word \"light\" and words about brightness.",
     ("She turned on the light and the room grew bright.", "The sun shone through the window at dawn.")),
    (NEUTRAL_DESCRIPTION,
     ("The meeting was moved to Thursday afternoon.", "Add the flour slowly and keep stirring.")),
)


def description_prompt(description: str) -> str:
    """The few-shot prompt that ends with `description`; each example's text follows it on a new line."""
    blocks = [f"Description: {d}\nSentences:\n" + "".join(f"{s}\n" for s in sentences) for d, sentences in FEW_SHOT]
    return "\n".join(blocks) + f"\nDescription: {description}\nSentences:\n"


def surprisal_scores(lm: SubjectModel, items: Sequence[ScoreItem], batch_size: int = 16,
                     seed: int = 0) -> list[LatentScore]:
    """One LatentScore per item, in order. Judgment.probability holds the example's loss reduction."""
    losses: dict[str, dict[str, float]] = {}  # description -> example text -> mean loss

    def mean_losses(description: str, texts: list[str]) -> dict[str, float]:
        known = losses.setdefault(description, {})
        new = [t for t in dict.fromkeys(texts) if t not in known]
        if new:
            prefix = token_ids(lm, description_prompt(description), bos=True)
            for text, logprobs in zip(new, shared_prefix_logprobs(lm, prefix, [token_ids(lm, t) for t in new],
                                                                  batch_size)):
                known[text] = float(-logprobs.mean()) if logprobs.size else float("nan")
        return known

    scores = []
    for item in items:
        pairs = item.labelled()
        if not (item.explanation and item.explanation.strip()):
            judgments = [Judgment(e.set_name, e.idx, label, None, None, "no explanation to score")
                         for e, label in pairs]
            scores.append(summarise(item.latent, SURPRISAL, judgments, seed=seed))
            continue
        texts = [e.example.text for e, _ in pairs]
        neutral = mean_losses(NEUTRAL_DESCRIPTION, texts)
        explained = mean_losses(item.explanation.strip(), texts)
        reduction = np.array([neutral[t] - explained[t] for t in texts])
        valid = ~np.isnan(reduction)
        predictions = np.zeros(len(pairs), dtype=int)
        predictions[valid] = top_share(reduction[valid], sum(label for (_, label), ok in zip(pairs, valid) if ok))
        judgments = [
            Judgment(e.set_name, e.idx, label, int(p), float(r)) if ok
            else Judgment(e.set_name, e.idx, label, None, None, "example has no tokens")
            for (e, label), p, r, ok in zip(pairs, predictions, reduction, valid)
        ]
        scores.append(summarise(item.latent, SURPRISAL, judgments, seed=seed))
    return scores
