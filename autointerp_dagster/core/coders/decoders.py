"""Where a latent writes: its decoder direction and the module whose output it is added to, for steering.

Caching reads only encoders; steering (the intervention scorer) needs the other side. Every family writes to
the output of the module its coder is hooked on: an SAE reconstructs the hookpoint's output, a transcoder
predicts the output of the module whose input it reads, and an MLP neuron writes its column of the output
projection (whose input the neuron coder reads) into that projection's output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .base import CoderSource, SparseCoder, SparseCoderError, find_submodule
from .formats.gemmascope import GEMMASCOPE_FILES
from .formats.files import read_tensors
from .locate import resolve_local

_DECODER_FILES = {"sparsify": ("sae.safetensors",), "saelens": ("sae_weights.safetensors",),
                  "gemmascope": GEMMASCOPE_FILES}


@dataclass(frozen=True)
class SteeringSite:
    """`directions[i]` is latent `latents[i]`'s unit-norm decoder direction, added to `module`'s output."""

    module: str
    latents: tuple[int, ...]
    directions: torch.Tensor  # [len(latents), d_model]


def steering_site(coder: SparseCoder, latents: Sequence[int], base_model: torch.nn.Module) -> SteeringSite:
    """The decoder directions of `latents` (unit norm: the strength search sets the scale) and where they go."""
    latents = tuple(int(i) for i in latents)
    bad = [i for i in latents if not 0 <= i < coder.n_latents]
    if bad:
        raise SparseCoderError(f"{coder.label} has {coder.n_latents} latents; no latent {bad}")
    if coder.format == "neurons":
        projection = find_submodule(base_model, coder.capture_module, coder.label)
        weight = projection.weight.detach()
        # nn.Linear stores [out, in]; transformers' Conv1D (GPT-2) stores [in, out].
        rows = weight[:, list(latents)].T if isinstance(projection, torch.nn.Linear) else weight[list(latents)]
    else:
        rows = _decoder_rows(coder, latents)
    rows = rows.float()
    norms = rows.norm(dim=-1, keepdim=True)
    if (norms == 0).any():
        zero = [i for i, n in zip(latents, norms.squeeze(-1).tolist()) if n == 0]
        raise SparseCoderError(f"{coder.label}: latent(s) {zero} have a zero decoder direction")
    return SteeringSite(coder.capture_module, latents, rows / norms)


def _decoder_rows(coder: SparseCoder, latents: tuple[int, ...]) -> torch.Tensor:
    local = resolve_local(CoderSource(path=coder.path))
    names = _DECODER_FILES.get(coder.format)
    if names is None:
        raise SparseCoderError(f"{coder.label}: no decoder reader for format {coder.format!r}")
    candidates = [local] if local.is_file() else [local / n for n in names]
    file = next((f for f in candidates if f.exists()), candidates[0])
    decoder = read_tensors(file, ["W_dec"])["W_dec"]
    if decoder.shape[0] != coder.n_latents:
        raise SparseCoderError(f"{file}: W_dec has {decoder.shape[0]} rows but the coder {coder.n_latents} latents")
    return decoder[list(latents)]
