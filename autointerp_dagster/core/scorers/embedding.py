"""Embedding scoring: how well the explanation, used as a search query, retrieves its examples.

No LLM is involved, so it is cheap enough to run on every latent. The explanation and
each example's plain text are embedded with MiniLM; an example's score is the cosine
similarity to the explanation and AUC over those scores is this scorer's main number.

Binary predictions, needed for the shared metrics, mark as positive the examples
scoring at least the k-th highest score, k being the number of activating examples:
the threshold that splits the latent's scores at its share of positives, so no
threshold is tuned on the labels beyond that count. Ties at the threshold can make
more than k positive.
"""

from __future__ import annotations

from collections.abc import Sequence

from autointerp_dagster.core.models.embeddings import embed_texts
from autointerp_dagster.core.scorers.common import (
    EMBEDDING,
    Judgment,
    LatentScore,
    ScoreItem,
    summarise,
    top_share,
)

EMBEDDING_MODEL = "all-MiniLM-L6-v2"  # the judge column of embedding scores


def embedding_scores(items: Sequence[ScoreItem], seed: int = 0) -> list[LatentScore]:
    """One LatentScore per item, in order; all texts are embedded in one batch, each distinct text once (an
    explanation and its shuffled control are scored on the same windows)."""
    texts: list[str] = []
    spans = []
    for item in items:
        pairs = item.labelled()
        start = len(texts)
        texts.append(item.explanation or "")
        texts += [e.example.text for e, _ in pairs]
        spans.append((start, pairs))
    distinct = list(dict.fromkeys(texts))
    row = {text: i for i, text in enumerate(distinct)}
    vectors = embed_texts(distinct)[[row[text] for text in texts]]

    scores = []
    for item, (start, pairs) in zip(items, spans):
        if not pairs or not (item.explanation and item.explanation.strip()):
            judgments = [
                Judgment(e.set_name, e.idx, label, None, None, "no explanation to score")
                for e, label in pairs
            ]
            scores.append(summarise(item.latent, EMBEDDING, judgments, seed=seed))
            continue
        query = vectors[start]
        similarity = vectors[start + 1 : start + 1 + len(pairs)] @ query
        n_positive = sum(label for _, label in pairs)
        predictions = top_share(similarity, n_positive)
        judgments = [
            Judgment(e.set_name, e.idx, label, int(pred), float(sim))
            for (e, label), pred, sim in zip(pairs, predictions, similarity)
        ]
        scores.append(summarise(item.latent, EMBEDDING, judgments, seed=seed))
    return scores

