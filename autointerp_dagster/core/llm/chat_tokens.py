"""Chat requests as token ids, and generated positions as top-logprob dicts, for in-process engines.

The tokenizer is a Hugging Face one (its chat template decides the prompt); the engine behind it
(torch or CTranslate2) only sees ids, so what a prompt is and how an answer's logprobs read stays
the same whichever engine computes them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from autointerp_dagster.core.llm.types import (
    BackendError,
    ChatRequest,
    PromptScoreReply,
    PromptScoreRequest,
)


def prompt_ids(tokenizer, request: ChatRequest) -> list[int]:
    """The chat-templated prompt; a last assistant message is continued, not closed (a prefill)."""
    prefill = request.messages[-1]["role"] == "assistant"
    prompt = tokenizer.apply_chat_template(request.messages, tokenize=False, add_generation_prompt=not prefill,
                                           continue_final_message=prefill)
    return tokenizer(prompt, add_special_tokens=False)["input_ids"]


def prefix_length(tokenizer, request: ChatRequest, ids: list[int]) -> int:
    """Tokens of the messages before the last user message (the instructions and worked turns that requests of
    one kind share; a prefilled answer after it does not count), when they are a proper prefix of the prompt."""
    users = [i for i, message in enumerate(request.messages) if message["role"] == "user"]
    if not users or users[-1] == 0:
        return 0
    head = tokenizer.apply_chat_template(request.messages[:users[-1]], tokenize=False)
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


@dataclass(frozen=True)
class PromptPositions:
    """A plain prompt (no chat template) as ids, and which logit rows a PromptScoreRequest needs: at each offset
    that starts a token, the row one position before it; an offset inside a token has none."""

    ids: list[int]
    wanted: list[int | None]  # per offset: the index of the token starting there
    rows: list[int]  # sorted distinct logit rows to compute
    candidates: dict[str, int]  # candidate text -> its token id (candidates that are not one token are left out)


def prompt_positions(tokenizer, request: PromptScoreRequest, max_context: int) -> PromptPositions:
    encoded = tokenizer(request.prompt, add_special_tokens=False, return_offsets_mapping=True)
    ids, spans = encoded["input_ids"], encoded["offset_mapping"]
    if len(ids) > max_context:
        raise BackendError(f"prompt of {len(ids)} tokens exceeds the {max_context}-token context", 1)
    token_at = {start: i for i, (start, end) in enumerate(spans) if end > start and i > 0}
    candidates = {c: found[0] for c in request.candidates
                  if len(found := tokenizer.encode(c, add_special_tokens=False)) == 1}
    wanted = [token_at.get(offset) for offset in request.offsets]
    return PromptPositions(ids, wanted, sorted({i - 1 for i in wanted if i is not None}), candidates)


def prompt_score_reply(positions: PromptPositions,
                       logits_at: Callable[[list[int], list[int]], torch.Tensor]) -> PromptScoreReply:
    """The reply from `logits_at(ids, rows)` ([len(rows), vocabulary] logits), the one engine-specific step."""
    logprobs = []
    if positions.rows:  # logits at the kept rows only: the whole prompt's would be prompt x vocabulary floats
        logits = logits_at(positions.ids, positions.rows)
        logprobs = torch.log_softmax(logits.float(), dim=-1)[:, list(positions.candidates.values())].tolist()
    by_row = {row: dict(zip(positions.candidates, values)) for row, values in zip(positions.rows, logprobs)}
    return PromptScoreReply([None if i is None else by_row[i - 1] for i in positions.wanted],
                            tokens_in=len(positions.ids))
