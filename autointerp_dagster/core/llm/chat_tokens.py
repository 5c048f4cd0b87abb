"""Chat requests as token ids, and generated positions as top-logprob dicts, for in-process engines.

The tokenizer is a Hugging Face one (its chat template decides the prompt); the engine behind it
(torch or CTranslate2) only sees ids, so what a prompt is and how an answer's logprobs read stays
the same whichever engine computes them.
"""

from __future__ import annotations

import torch

from autointerp_dagster.core.llm.types import ChatRequest


def prompt_ids(tokenizer, request: ChatRequest) -> list[int]:
    """The chat-templated prompt; a last assistant message is continued, not closed (a prefill)."""
    prefill = request.messages[-1]["role"] == "assistant"
    prompt = tokenizer.apply_chat_template(request.messages, tokenize=False, add_generation_prompt=not prefill,
                                           continue_final_message=prefill)
    return tokenizer(prompt, add_special_tokens=False)["input_ids"]


def prefix_length(tokenizer, request: ChatRequest, ids: list[int]) -> int:
    """Tokens of the messages before the last one, when they are a proper prefix of the prompt's tokens."""
    if len(request.messages) < 2:
        return 0
    head = tokenizer.apply_chat_template(request.messages[:-1], tokenize=False)
    head_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
    return len(head_ids) if len(head_ids) < len(ids) and ids[: len(head_ids)] == head_ids else 0


def top_logprobs(tokenizer, logprob_rows: list[torch.Tensor], generated: list[int],
                 top_n: int) -> list[dict[str, float]]:
    """Per generated position (a full-vocabulary logprob row): the top `top_n` tokens' logprobs, plus the
    chosen token's; tokens that decode alike keep the likelier value."""
    positions = []
    for logprobs, chosen in zip(logprob_rows, generated):
        values, ids = logprobs.topk(top_n) if top_n else (logprobs[[chosen]], torch.tensor([chosen]))
        top: dict[str, float] = {}
        for token_id, value in zip(ids.tolist(), values.tolist()):
            top.setdefault(tokenizer.decode([token_id]), value)
        top.setdefault(tokenizer.decode([chosen]), float(logprobs[chosen]))
        positions.append(top)
    return positions


def before_stop(text: str, stops: tuple[str, ...]) -> str:
    """The reply up to the first stop string, which it leaves out (as OpenAI-compatible servers do)."""
    for stop in stops:
        text = text.split(stop, 1)[0]
    return text
