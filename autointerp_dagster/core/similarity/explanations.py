"""Explanation similarity of matched latents: the MiniLM cosine of their two explanations (the paper's way of
asking whether independently trained coders found the same concept), only where both latents are explained."""

from __future__ import annotations

import numpy as np

from ..models.embeddings import embed_texts
from ..store import ResultsStore


def explanation_cosines(texts_a: dict[int, str], texts_b: dict[int, str], latent_a: np.ndarray,
                        latent_b: np.ndarray) -> np.ndarray:
    """Cosine of the embedded explanations of each pair (latent_a[i], latent_b[i]); NaN where either is missing."""
    result = np.full(len(latent_a), np.nan)
    both = [i for i, (a, b) in enumerate(zip(latent_a, latent_b)) if int(a) in texts_a and int(b) in texts_b]
    if both:
        left = embed_texts([texts_a[int(latent_a[i])] for i in both])
        right = embed_texts([texts_b[int(latent_b[i])] for i in both])
        result[both] = np.einsum("ij,ij->i", left, right)
    return result


def explained_texts(store: ResultsStore, sae: str, explainer: str, explainer_model: str) -> dict[int, str]:
    """latent -> explanation of the SAE's latents explained (status ok) by this explainer and model."""
    backend, _, model = explainer_model.partition(":")
    with store.connect() as con:
        if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'explanations'"
                           ).fetchone()[0]:
            return {}
        found = con.execute("SELECT latent, explanation FROM explanations WHERE sae = ? AND explainer = ? AND "
                            "backend = ? AND model = ? AND status = 'ok'", [sae, explainer, backend, model]).fetchall()
    return {int(latent): text for latent, text in found}
