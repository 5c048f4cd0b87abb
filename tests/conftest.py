"""Shared fixtures: a tiny real Hugging Face model and tokenizer built offline, tiny SAEs, a project home."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _train_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<eos>", "<bos>", "<unk>"])
    tokenizer.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 3-layer Gemma 3 model (random weights, 64-wide) and a BPE tokenizer trained on the embedded corpus."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from autointerp_dagster.core.embedded import kjv_documents

    folder = tmp_path_factory.mktemp("tiny-gemma")
    docs = [doc for _, doc in zip(range(60), kjv_documents())]
    tokenizer = _train_tokenizer(docs)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=96, num_hidden_layers=3,
        num_attention_heads=2, num_key_value_heads=1, head_dim=32, max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        sliding_window=64,
    )
    torch.manual_seed(0)
    Gemma3ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_sparsify_sae(folder: Path, d_in: int, num_latents: int, k: int, seed: int, transcode: bool = False) -> Path:
    """Saves a randomly initialised sparsify TopK SAE in sparsify's own format."""
    from sparsify import SparseCoder, SparseCoderConfig

    torch.manual_seed(seed)
    sae = SparseCoder(d_in, SparseCoderConfig(num_latents=num_latents, k=k, transcode=transcode))
    with torch.no_grad():
        sae.encoder.bias.uniform_(-0.05, 0.05)
        sae.W_dec.normal_()
    sae.save_to_disk(folder)
    return folder


@pytest.fixture
def project(tmp_path, tiny_model_dir, monkeypatch):
    """A project home with settings on the tiny model, the embedded corpus (small budget) and three SAEs.

    Two SAEs share hookpoint layers.1 (run names `run-a`, `run-b`), one reads layers.0.
    """
    home = tmp_path / "home"
    sae_dir = home / "saes"
    write_sparsify_sae(sae_dir / "run-a" / "layers.0", 64, 96, 4, seed=1)
    write_sparsify_sae(sae_dir / "run-a" / "layers.1", 64, 128, 4, seed=2)
    write_sparsify_sae(sae_dir / "run-b" / "layers.1", 64, 80, 3, seed=3)
    config = {
        "model": str(tiny_model_dir),
        "model_alias": "tiny",
        "corpus": {"source": "embedded:kjv", "ctx_len": 32, "token_budget": 32 * 40},
        "embedded_saes": None,
        "cache_batch_rows": 8,
    }
    config_file = tmp_path / "autointerp.yaml"
    config_file.write_text(json.dumps(config))
    monkeypatch.setenv("AUTOINTERP_HOME", str(home))
    monkeypatch.setenv("AUTOINTERP_CONFIG", str(config_file))
    from autointerp_dagster.core.settings import load_settings

    return load_settings()
