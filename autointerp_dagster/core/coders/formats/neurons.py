"""MLP neurons read as latents: the baseline that SAEs should beat. No files, only the model."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...config import CoderSource
from ..base import SparseCoder, SparseCoderError, find_submodule, topk_of_positive

MLP_OUT_PROJECTIONS = ("down_proj", "dense_4h_to_h", "c_proj", "fc2", "w2")


class NeuronCoder(SparseCoder):
    """MLP neurons read as latents (all positive ones, or the top k)."""

    format = "neurons"

    def __init__(self, *, k: int | None, **kw):
        super().__init__(**kw)
        self.k = k

    def _sparse(self, x):
        if self.k is None:
            return topk_of_positive(F.relu(x))
        return F.relu(x).topk(min(self.k, self.n_latents), dim=-1)


def neuron_identity(source: CoderSource) -> tuple[str, str]:
    """(hookpoint, name) of a neuron coder; the name says how many neurons it keeps."""
    if not source.hookpoint:
        raise SparseCoderError("neuron coders need hookpoint set to an MLP module, e.g. layers.6.mlp")
    return source.hookpoint, source.name or (f"neurons-top{source.k}" if source.k else "neurons")


def load_neurons(source: CoderSource, base_model: torch.nn.Module | None) -> NeuronCoder:
    if base_model is None:
        raise SparseCoderError("neuron coders need the base model to find the MLP's output projection")
    hookpoint, name = neuron_identity(source)
    mlp = find_submodule(base_model, hookpoint, hookpoint)
    children = dict(mlp.named_children())
    proj_name = next((n for n in MLP_OUT_PROJECTIONS if n in children), None)
    if proj_name is None:
        raise SparseCoderError(
            f"{hookpoint} has no output projection among {', '.join(MLP_OUT_PROJECTIONS)}; "
            f"its children are: {', '.join(children) or 'none'}"
        )
    proj = children[proj_name]
    width = getattr(proj, "in_features", None)
    if width is None:
        width = proj.weight.shape[0]  # transformers Conv1D (GPT-2) stores [in, out]
    return NeuronCoder(
        k=source.k,
        path=source.path,
        name=name,
        hookpoint=hookpoint,
        capture_module=f"{hookpoint}.{proj_name}",
        capture="input",
        d_in=int(width),
        n_latents=int(width),
    )
