"""Decoder directions: what each latent writes back into the model (the output side of a coder).

Encoding never needs them, so coders load without them; the output-side uses (tokens a latent promotes
through the unembedding, neighbour negatives, matching latents across coders, steering) read them here, from
the coder's own files, or for MLP neurons from the model's output projection. Every family writes to the output
of the module its coder is hooked on: an SAE reconstructs the hookpoint's output, a transcoder predicts the
output of the module whose input it reads, and an MLP neuron writes its column of the output projection (whose
input the neuron coder reads) into that projection's output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..config import CoderSource
from .base import SparseCoder, SparseCoderError, find_submodule
from .formats.files import read_tensors
from .formats.gemmascope import GEMMASCOPE_FILES
from .formats.neurons import MLP_OUT_PROJECTIONS, neuron_identity
from .formats.random_twin import RANDOM_KIND
from .locate import resolve_local, source_format

# family -> files that may hold it; every family stores W_dec as [n_latents, d_model]
_FILES = {"sparsify": ("sae.safetensors",), "saelens": ("sae_weights.safetensors",), "gemmascope": GEMMASCOPE_FILES}


def decoder_directions(source: CoderSource, base_model: torch.nn.Module | None = None) -> torch.Tensor:
    """[n_latents, d_model] float32: latent i's decoder row (for a transcoder, what it writes to the MLP output;
    for a neuron, its column of the MLP output projection, which needs `base_model`)."""
    if source.kind == "neurons":
        hookpoint, _ = neuron_identity(source)
        if base_model is None:
            raise SparseCoderError(f"{hookpoint}: MLP neurons have no decoder file; their directions need the base "
                                   "model's MLP output projection")
        return _projection_columns(find_submodule(base_model, hookpoint, hookpoint), hookpoint)
    if source.kind == RANDOM_KIND:  # a random twin decodes along its encoder rows
        from .load import load_coder

        return load_coder(source).weight.float()
    local = resolve_local(source)
    family = source_format(source, local)
    candidates = [local] if local.is_file() else [local / name for name in _FILES[family]]
    file = next((f for f in candidates if f.exists()), candidates[0])
    weights = read_tensors(file, ["W_dec"])["W_dec"].float()
    if weights.ndim != 2:
        raise SparseCoderError(f"{file}: W_dec has shape {list(weights.shape)}, expected [n_latents, d_model]")
    return weights


def unit_decoder_directions(source: CoderSource, base_model: torch.nn.Module | None = None) -> np.ndarray:
    """The decoder directions scaled to unit norm (a zero row stays zero), as float32 numpy: cosines are dot
    products."""
    weights = decoder_directions(source, base_model).numpy()
    norms = np.linalg.norm(weights, axis=1, keepdims=True)
    return np.ascontiguousarray(weights / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def _projection_columns(mlp: torch.nn.Module, label: str) -> torch.Tensor:
    """Each neuron's column of the MLP's output projection, as rows [n_neurons, d_model]."""
    children = dict(mlp.named_children())
    proj = next((children[n] for n in MLP_OUT_PROJECTIONS if n in children), None)
    if proj is None:
        raise SparseCoderError(f"{label} has no output projection among {', '.join(MLP_OUT_PROJECTIONS)}")
    weight = proj.weight.detach().float()
    # nn.Linear stores [out, in] (a neuron is a column); transformers' Conv1D (GPT-2) stores [in, out].
    return weight if getattr(proj, "in_features", None) is None else weight.T.contiguous()


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
    if coder.format == "neurons":  # the coder reads the projection's input; its parent is the MLP
        mlp = find_submodule(base_model, coder.capture_module.rsplit(".", 1)[0], coder.label)
        rows = _projection_columns(mlp, coder.label)
    else:
        rows = decoder_directions(CoderSource(path=coder.path, kind=coder.format, hookpoint=coder.hookpoint))
        if rows.shape[0] != coder.n_latents:
            raise SparseCoderError(f"{coder.label}: W_dec has {rows.shape[0]} rows but the coder {coder.n_latents} "
                                   "latents")
    rows = rows[list(latents)]
    norms = rows.norm(dim=-1, keepdim=True)
    if (norms == 0).any():
        zero = [i for i, n in zip(latents, norms.squeeze(-1).tolist()) if n == 0]
        raise SparseCoderError(f"{coder.label}: latent(s) {zero} have a zero decoder direction")
    return SteeringSite(coder.capture_module, latents, rows / norms)
