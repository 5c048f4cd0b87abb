"""Decoder directions of a coder: what each latent writes back into the model, the basis for matching
latents across coders. Read on demand from the coder's files (the cached encoders never need them)."""

from __future__ import annotations

import numpy as np

from .base import CoderSource, SparseCoderError
from .formats.files import read_tensors
from .formats.gemmascope import GEMMASCOPE_FILES
from .locate import resolve_local, source_format

# family -> (file in the coder's folder, decoder tensor name); every family stores it [n_latents, d_model]
_DECODER_FILES = {"sparsify": ("sae.safetensors", "W_dec"), "saelens": ("sae_weights.safetensors", "W_dec")}


def decoder_directions(source: CoderSource) -> np.ndarray:
    """[n_latents, d_model] float32 unit vectors, one per latent (a zero row stays zero).

    MLP neurons have no file of their own (their directions are the model's output projection), so they
    are refused here with that reason.
    """
    if source.kind == "neurons":
        raise SparseCoderError(f"{source.path or source.hookpoint}: MLP neurons have no decoder file to match on")
    local = resolve_local(source)
    family = source_format(source, local)
    if family == "gemmascope":
        candidates = [local] if local.is_file() else [local / f for f in GEMMASCOPE_FILES]
        file = next((f for f in candidates if f.exists()), candidates[0])
        name = "W_dec"
    else:
        filename, name = _DECODER_FILES[family]
        file = local / filename
    weights = read_tensors(file, [name])[name].float().numpy()
    if weights.ndim != 2:
        raise SparseCoderError(f"{file}: {name} has shape {list(weights.shape)}, expected [n_latents, d_model]")
    norms = np.linalg.norm(weights, axis=1, keepdims=True)
    return np.ascontiguousarray(weights / np.where(norms > 0, norms, 1.0), dtype=np.float32)
