"""Neuron coders: the MLP's down-projection input read as latents, on a real (tiny) Gemma model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autointerp_dagster.core.coders import CoderSource, SparseCoderError, load_coder

from .checks import assert_encodes, keep_topk, relu, sparse_to_dense, tiny_gemma


def test_neurons_read_the_down_projection_input():
    model = tiny_gemma()
    base = model.model
    coder = load_coder(CoderSource("", hookpoint="layers.1.mlp", kind="neurons", k=3), base_model=base)
    assert (coder.capture_module, coder.capture, coder.d_in, coder.n_latents) == (
        "layers.1.mlp.down_proj", "input", 48, 48)
    assert coder.name == "neurons-top3"
    captured = {}
    handle = base.get_submodule(coder.capture_module).register_forward_pre_hook(
        lambda mod, args: captured.setdefault("x", args[0].detach())
    )
    with torch.no_grad():
        model(torch.tensor([[1, 5, 9, 2, 7, 3]]))
    handle.remove()
    x = captured["x"].reshape(-1, 48).numpy()
    assert_encodes(coder, x, keep_topk(relu(x), 3))

    every = load_coder(CoderSource("", hookpoint="layers.1.mlp", kind="neurons"), base_model=base)
    assert every.name == "neurons"
    values, indices = every.encode_sparse(torch.from_numpy(x))
    assert values.shape[1] == int((x > 0).sum(axis=1).max())
    np.testing.assert_allclose(sparse_to_dense(values, indices, 48), relu(x), atol=1e-6)


def test_neurons_errors_name_what_is_missing():
    base = tiny_gemma().model
    with pytest.raises(SparseCoderError, match="base model"):
        load_coder(CoderSource("", hookpoint="layers.1.mlp", kind="neurons"))
    with pytest.raises(SparseCoderError, match="children are: q_proj"):
        load_coder(CoderSource("", hookpoint="layers.1.self_attn", kind="neurons"), base_model=base)
