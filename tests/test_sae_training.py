"""Training the embedded default's TopK SAEs with sparsify, on the device the activations are on."""

from __future__ import annotations

import pytest
import torch

from autointerp_dagster.core.coders.train import train_topk_sae
from autointerp_dagster.core.config import EmbeddedSaeSpec

pytest.importorskip("sparsify")

SPEC = EmbeddedSaeSpec(hookpoints=("layers.0",), num_latents=64, k=4, train_tokens=512, epochs=2, batch_tokens=128)


def activations(device: str = "cpu") -> torch.Tensor:
    """Sparse combinations of a few directions, so a small SAE can explain them."""
    g = torch.Generator().manual_seed(0)
    directions = torch.randn(32, 16, generator=g)
    codes = torch.rand(SPEC.train_tokens, 32, generator=g) * (torch.rand(SPEC.train_tokens, 32, generator=g) < 0.1)
    return (codes @ directions + 0.01 * torch.randn(SPEC.train_tokens, 16, generator=g)).to(device)


def test_cpu_training_avoids_sparsifys_triton_decoder(monkeypatch):
    """sparsify decodes with Triton whenever Triton imports (any CUDA build of torch); its kernel refuses
    CPU tensors, so CPU training on a GPU machine must use the eager decoder."""
    import sparsify.sparse_coder as sparse_coder

    def triton_like(top_indices, top_acts, w_dec):
        if top_acts.device.type == "cpu":
            raise ValueError("Pointer argument (at 0) cannot be accessed from Triton (cpu tensor?)")
        raise AssertionError("not reached in this test")

    monkeypatch.setattr(sparse_coder, "decoder_impl", triton_like)
    sae, fvu, dead = train_topk_sae(activations(), SPEC, log=lambda _m: None)
    assert 0 <= fvu < 0.9 and 0 <= dead <= 1
    assert {p.device.type for p in sae.parameters()} == {"cpu"}
    assert sparse_coder.decoder_impl is triton_like  # restored afterwards


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_trains_on_the_gpu_when_activations_are_there():
    sae, fvu, dead = train_topk_sae(activations("cuda"), SPEC, log=lambda _m: None)
    assert {p.device.type for p in sae.parameters()} == {"cuda"}
    assert 0 <= fvu < 0.9 and 0 <= dead <= 1
