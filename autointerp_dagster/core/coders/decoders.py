"""Decoder directions: what each latent writes back into the model (the output side of a coder).

Encoding never needs them, so coders load without them; the output-side uses (tokens a latent promotes
through the unembedding, neighbour negatives, matching latents across coders) read them here, from the
coder's own files, or for MLP neurons from the model's output projection.
"""

from __future__ import annotations

import numpy as np
import torch

from .base import CoderSource, SparseCoderError, find_submodule
from .formats.files import read_tensors
from .formats.gemmascope import GEMMASCOPE_FILES
from .formats.neurons import MLP_OUT_PROJECTIONS, neuron_identity
from .locate import resolve_local, source_format

# family -> files that may hold it; every family stores W_dec as [n_latents, d_model]
_FILES = {"sparsify": ("sae.safetensors",), "saelens": ("sae_weights.safetensors",), "gemmascope": GEMMASCOPE_FILES}


def decoder_directions(source: CoderSource, base_model: torch.nn.Module | None = None) -> torch.Tensor:
    """[n_latents, d_model] float32: latent i's decoder row (for a transcoder, what it writes to the MLP output;
    for a neuron, its column of the MLP output projection, which needs `base_model`)."""
    if source.kind == "neurons":
        return _neuron_directions(source, base_model)
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


def _neuron_directions(source: CoderSource, base_model: torch.nn.Module | None) -> torch.Tensor:
    hookpoint, _ = neuron_identity(source)
    if base_model is None:
        raise SparseCoderError(f"{hookpoint}: MLP neurons have no decoder file; their directions need the base "
                               "model's MLP output projection")
    mlp = find_submodule(base_model, hookpoint, hookpoint)
    children = dict(mlp.named_children())
    proj = next((children[n] for n in MLP_OUT_PROJECTIONS if n in children), None)
    if proj is None:
        raise SparseCoderError(f"{hookpoint} has no output projection among {', '.join(MLP_OUT_PROJECTIONS)}")
    weight = proj.weight.detach().float()
    # nn.Linear stores [out, in] (a neuron is a column); transformers' Conv1D (GPT-2) stores [in, out].
    return weight if getattr(proj, "in_features", None) is None else weight.T.contiguous()
