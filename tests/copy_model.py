"""A tiny Gemma 3 whose behaviour is known by construction, for the scorers that read a language model.

A random tiny model cannot read meaning, so the surprisal and intervention tests use a one-layer model wired to
copy: its attention is uniform over the context (zero queries and keys) and carries each token's embedding
(identity values and output), amplified past the current token's own embedding, so the next-token logits favour
every token already in the context. Hence a description that names a word makes texts containing that word more
predictable (surprisal), and completions full of a word make an explanation naming it more likely
(intervention). Its MLP is silent (zero gate) unless steered, and its post-MLP norm is amplified like the
attention's, so a direction added at the MLP (a neuron's column, a transcoder's decoder row) moves the logits too.
"""

from __future__ import annotations

from pathlib import Path

import torch

AMPLIFY = 20.0  # added to the Gemma norms' (1 + weight) scale
EMBEDDING_STD = 0.15  # embeddings of norm ~1.2: next-token distributions peaked, but not one-hot


def build_copy_model(folder: Path, tokenizer) -> Path:
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=96, num_hidden_layers=1, num_attention_heads=1,
        num_key_value_heads=1, head_dim=64, max_position_embeddings=512, sliding_window=512,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(config)
    layer = model.model.layers[0]
    with torch.no_grad():
        model.model.embed_tokens.weight.normal_(0.0, EMBEDDING_STD)
        layer.self_attn.q_proj.weight.zero_()
        layer.self_attn.k_proj.weight.zero_()
        layer.self_attn.v_proj.weight.copy_(torch.eye(64))
        layer.self_attn.o_proj.weight.copy_(torch.eye(64))
        layer.post_attention_layernorm.weight.fill_(AMPLIFY)
        layer.mlp.gate_proj.weight.zero_()
        layer.post_feedforward_layernorm.weight.fill_(AMPLIFY)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def word_tokens(tokenizer, n: int) -> list[tuple[int, str]]:
    """`n` whole-word tokens (a leading space, then 4+ letters) as (id, word): a word that a description or
    explanation names tokenizes, after a space, to exactly that token."""
    found = []
    for _token, token_id in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1]):
        word = tokenizer.decode([token_id])
        if word.startswith(" ") and word[1:].isalpha() and len(word) >= 5 \
                and tokenizer(word, add_special_tokens=False)["input_ids"] == [token_id]:
            found.append((token_id, word[1:]))
    return found[:n]
