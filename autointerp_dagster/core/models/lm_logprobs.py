"""Log-probabilities of continuations under a causal LM, computed only where they are needed.

For Gemma the LM head (262k x 640) costs more than the whole transformer body per token, so the body runs
over every token but the head only at the positions that predict a scored token. A prefix shared by many
continuations (surprisal's few-shot prompt) runs once and its key-value cache is reused by every batch.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence

import numpy as np
import torch
from transformers import Cache, DynamicCache

from autointerp_dagster.core.models.subject import SubjectModel


def logits_of(lm: SubjectModel, hidden: torch.Tensor) -> torch.Tensor:
    """The LM head on final hidden states (the body's output is already normed), with Gemma's soft cap."""
    logits = lm.model.get_output_embeddings()(hidden).float()
    cap = getattr(lm.model.config, "final_logit_softcapping", None)
    return torch.tanh(logits / cap) * cap if cap else logits


def run_body(lm: SubjectModel, input_ids: torch.Tensor, cache: Cache | None = None, **kwargs) -> torch.Tensor:
    """The transformer body's final (normed) hidden states; `cache` (a key-value cache) is extended in place.
    transformers renamed the cache argument (past_key_values -> cache) within 5.x: both are accepted."""
    name = "cache" if "cache" in inspect.signature(lm.body.forward).parameters else "past_key_values"
    out = lm.body(input_ids=input_ids.to(lm.device), use_cache=cache is not None, **{name: cache}, **kwargs)
    return out.last_hidden_state


def new_cache(lm: SubjectModel) -> Cache:
    return DynamicCache(config=lm.model.config)


def token_ids(lm: SubjectModel, text: str, bos: bool = False) -> list[int]:
    """`text`'s token ids, with the model's BOS first when asked (and the model has one)."""
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    return ([lm.bos_token_id] if bos and lm.bos_token_id is not None else []) + list(ids)


def continuation_logprobs(lm: SubjectModel, contexts: Sequence[list[int]], continuations: Sequence[list[int]],
                          batch_size: int) -> list[np.ndarray]:
    """log P(continuation token t | context, continuation[:t]) for each pair; sequences right-padded in
    batches (a causal model never attends to the padding after a token, so no mask is needed)."""
    out: list[np.ndarray] = []
    for start in range(0, len(contexts), batch_size):
        pairs = list(zip(contexts[start:start + batch_size], continuations[start:start + batch_size]))
        sequences = [c + k for c, k in pairs]
        ids = _right_padded(sequences, _pad_id(lm))
        with torch.inference_mode():
            hidden = run_body(lm, ids)
            for row, (context, continuation) in enumerate(pairs):
                if not continuation:
                    out.append(np.zeros(0))
                    continue
                positions = torch.arange(len(context) - 1, len(context) + len(continuation) - 1)
                logprobs = torch.log_softmax(logits_of(lm, hidden[row, positions]), dim=-1)
                target = torch.tensor(continuation, device=logprobs.device)
                out.append(logprobs[torch.arange(len(continuation)), target].cpu().numpy())
    return out


def shared_prefix_logprobs(lm: SubjectModel, prefix: list[int], continuations: Sequence[list[int]],
                           batch_size: int) -> list[np.ndarray]:
    """log P of each continuation's tokens after one shared `prefix`, whose cache is computed once."""
    if not prefix:
        raise ValueError("the shared prefix is empty: at least a BOS token is needed to predict the first token")
    with torch.inference_mode():
        prefix_cache = new_cache(lm)
        prefix_hidden = run_body(lm, torch.tensor([prefix]), prefix_cache)
        first = torch.log_softmax(logits_of(lm, prefix_hidden[0, -1]), dim=-1)
        out: list[np.ndarray] = []
        for start in range(0, len(continuations), batch_size):
            batch = list(continuations[start:start + batch_size])
            cache = copy.deepcopy(prefix_cache)
            cache.batch_repeat_interleave(len(batch))
            hidden = run_body(lm, _right_padded(batch, _pad_id(lm)), cache)
            for row, continuation in enumerate(batch):
                if not continuation:
                    out.append(np.zeros(0))
                    continue
                logprobs = torch.log_softmax(logits_of(lm, hidden[row, : len(continuation) - 1]), dim=-1)
                rest = logprobs[torch.arange(len(continuation) - 1), torch.tensor(continuation[1:])]
                out.append(torch.cat([first[continuation[0]].reshape(1), rest]).cpu().numpy())
    return out


def _pad_id(lm: SubjectModel) -> int:
    pad = getattr(lm.tokenizer, "pad_token_id", None)
    return pad if pad is not None else (getattr(lm.tokenizer, "eos_token_id", None) or 0)


def _right_padded(sequences: Sequence[list[int]], pad: int) -> torch.Tensor:
    width = max(len(s) for s in sequences)
    return torch.tensor([list(s) + [pad] * (width - len(s)) for s in sequences], dtype=torch.long)
