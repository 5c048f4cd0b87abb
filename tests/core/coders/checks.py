"""Inputs, reference math and a tiny model that the coder tests check encodings against."""

from __future__ import annotations

import numpy as np
import torch
import transformers

from .writers import D_IN, f32, rng


def relu(a):
    return np.maximum(a, 0)


def keep_topk(acts: np.ndarray, k: int) -> np.ndarray:
    """Zeroes all but the k largest entries of each row."""
    out = np.zeros_like(acts)
    idx = np.argsort(-acts, axis=1)[:, :k]
    np.put_along_axis(out, idx, np.take_along_axis(acts, idx, axis=1), axis=1)
    return out


def sparse_to_dense(values: torch.Tensor, indices: torch.Tensor, n: int) -> np.ndarray:
    """What the caller keeps: values > 0 at their indices."""
    assert indices.dtype == torch.int64
    assert values.shape == indices.shape
    v, i = values.float().numpy(), indices.numpy()
    out = np.zeros((v.shape[0], n), dtype=np.float32)
    for row in range(v.shape[0]):
        for val, col in zip(v[row], i[row]):
            if val > 0:
                assert out[row, col] == 0, "latent reported twice in one row"
                out[row, col] = val
    return out


def inputs(n=12, d=D_IN, seed=1):
    return f32(rng(seed).normal(size=(n, d)))


def assert_encodes(coder, x: np.ndarray, expected: np.ndarray):
    """The coder's sparse encoding of x holds exactly the reference's active latents."""
    values, indices = coder.encode_sparse(torch.from_numpy(x))
    got = sparse_to_dense(values, indices, coder.n_latents)
    assert (expected > 0).any(), "reference has no activity; the test would prove nothing"
    np.testing.assert_allclose(got, np.where(expected > 0, expected, 0), rtol=1e-5, atol=1e-5)


def tiny_gemma():
    """A 2-layer Gemma 3 with random weights: real module names to hook, built offline."""
    cfg = transformers.Gemma3TextConfig(
        vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16,
    )
    torch.manual_seed(0)
    return transformers.Gemma3ForCausalLM(cfg).eval()
