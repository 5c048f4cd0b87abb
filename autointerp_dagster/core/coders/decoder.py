"""Decoder directions: what each latent writes back into the model (the output side of a coder).

Encoding never needs them, so coders load without them; the output-side uses (tokens a latent
promotes through the unembedding, steering, matching latents across SAEs by decoder cosine)
read them here, from the coder's own files, or for MLP neurons from the output projection.
"""

from __future__ import annotations

import torch

from .base import CoderSource, SparseCoderError, find_submodule
from .formats.files import read_tensors
from .formats.gemmascope import GEMMASCOPE_FILES
from .formats.neurons import MLP_OUT_PROJECTIONS, neuron_identity
from .locate import resolve_local, source_format

_FILES = {"sparsify": ("sae.safetensors",), "saelens": ("sae_weights.safetensors",), "gemmascope": GEMMASCOPE_FILES}


def decoder_directions(source: CoderSource, base_model: torch.nn.Module | None = None) -> torch.Tensor:
    """[n_latents, d_out] float32: latent i's decoder row (for a transcoder, what it writes to the MLP output;
    for a neuron, its column of the MLP output projection). Neuron coders need `base_model`."""
    if source.kind == "neurons":
        return _neuron_directions(source, base_model)
    local = resolve_local(source)
    family = source_format(source, local)
    candidates = [local] if local.is_file() else [local / name for name in _FILES[family]]
    file = next((f for f in candidates if f.exists()), candidates[0])
    return read_tensors(file, ["W_dec"])["W_dec"].float()


def _neuron_directions(source: CoderSource, base_model: torch.nn.Module | None) -> torch.Tensor:
    if base_model is None:
        raise SparseCoderError("neuron decoder directions need the base model's MLP output projection")
    hookpoint, _ = neuron_identity(source)
    mlp = find_submodule(base_model, hookpoint, hookpoint)
    children = dict(mlp.named_children())
    proj = next((children[n] for n in MLP_OUT_PROJECTIONS if n in children), None)
    if proj is None:
        raise SparseCoderError(f"{hookpoint} has no output projection among {', '.join(MLP_OUT_PROJECTIONS)}")
    weight = proj.weight.detach().float()
    # nn.Linear stores [out, in] (a neuron is a column); transformers' Conv1D (GPT-2) stores [in, out].
    return weight if getattr(proj, "in_features", None) is None else weight.T.contiguous()
