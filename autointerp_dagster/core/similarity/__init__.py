"""Cross-coder similarity: latents of two coders of one model matched one-to-one by decoder cosine, with the
activation correlation and explanation similarity of each matched pair, beside self-copy, random-decoder and
random-pairing controls (`matching`, `activations`, `explanations`, `pairs`, `build`)."""

from .build import (
    CoderSimilarities,
    coder_loader,
    coder_similarities,
    model_coders,
    similarity_matrix,
)
from .matching import (
    DENSE_LIMIT,
    LatentMatching,
    MatchingError,
    match_latents,
    random_decoder,
)
from .pairs import (
    SHARE_THRESHOLD,
    CoderData,
    SimilarityResult,
    compare_coders,
    decoder_controls,
)

__all__ = [
    "DENSE_LIMIT", "SHARE_THRESHOLD", "CoderData", "CoderSimilarities", "LatentMatching", "MatchingError",
    "SimilarityResult", "coder_loader", "coder_similarities", "compare_coders", "decoder_controls",
    "match_latents", "model_coders", "random_decoder", "similarity_matrix",
]
