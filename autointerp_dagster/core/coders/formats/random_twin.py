"""A coder's random twin: the same shape, read site and sparsity, random weights. Heap et al. (2025) find that
autointerp scores barely separate SAEs trained on a model from random ones; explained and scored like the trained
coder, the twin is that control (the summaries show trained - random).

TopK over ReLU with the trained coder's k (32 when it has none, e.g. JumpReLU), encoder rows drawn from a normal
seeded by the coder's path and scaled to unit norm, no biases; the decoder directions are the encoder rows.
"""

from __future__ import annotations

import hashlib

import torch
import torch.nn.functional as F

from ...config import CoderSource
from ..base import SparseCoder

RANDOM_KIND = "random"
RANDOM_PREFIX = "random-"
DEFAULT_K = 32


class RandomTwin(SparseCoder):
    format = RANDOM_KIND

    def __init__(self, *, weight: torch.Tensor, k: int, **kw):
        super().__init__(**kw)
        self.register_buffer("weight", weight)
        self.k = k

    def _sparse(self, x):
        return F.relu(F.linear(x, self.weight)).topk(self.k, dim=-1, sorted=False)


def twin_source(source: CoderSource, hookpoint: str, name: str | None) -> CoderSource:
    """The twin of a registered coder: its path (for the shape), its hookpoint, the name `random-<name>`."""
    return CoderSource(path=source.path, hookpoint=hookpoint, name=f"{RANDOM_PREFIX}{name or 'coder'}",
                       kind=RANDOM_KIND)


def twin_key(key: str) -> str | None:
    """The key of a coder's random twin (`model/hookpoint/random-<name>`); None for a twin itself."""
    parts = key.split("/")
    if len(parts) > 2 and parts[-1].startswith(RANDOM_PREFIX):
        return None
    return f"{key}/{RANDOM_PREFIX}coder" if len(parts) == 2 else "/".join(parts[:-1] + [RANDOM_PREFIX + parts[-1]])


def random_weights(path: str, n_latents: int, d_in: int) -> torch.Tensor:
    """[n_latents, d_in] unit rows from a normal seeded by the trained coder's path."""
    seed = int.from_bytes(hashlib.sha256(f"random-twin:{path}".encode()).digest()[:8], "little")
    weights = torch.randn(n_latents, d_in, generator=torch.Generator().manual_seed(seed))
    return weights / weights.norm(dim=1, keepdim=True)


def random_twin_of(source: CoderSource, trained: SparseCoder) -> RandomTwin:
    return RandomTwin(weight=random_weights(source.path, trained.n_latents, trained.d_in),
                      k=min(int(getattr(trained, "k", None) or DEFAULT_K), trained.n_latents), path=source.path,
                      name=source.name, hookpoint=trained.hookpoint, capture_module=trained.capture_module,
                      capture=trained.capture, d_in=trained.d_in, n_latents=trained.n_latents,
                      is_transcoder=trained.is_transcoder)
