"""Steering the subject model along a latent's decoder direction, for the output-side (intervention) scorer.

Prompts are activating windows cut just after the latent first fires. `strength x direction` is added to the
hooked module's output from the last prompt position on (and at every generated position). Steering starts at
the last prompt position, so the clean key-value cache of the positions before it is computed once and copied
for every strength tried: each step of the strength search costs one token a prompt. The strength is found by
bisection on its logarithm so that the mean next-token KL(clean || steered) at the last prompt position hits a
target, which makes latents of different norms and layers comparable (the paper sweeps 0.1, 0.33, 1, 3 nats).
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from autointerp_dagster.core.models.lm_logprobs import (
    logits_of,
    new_cache,
    run_body,
    token_ids,
)
from autointerp_dagster.core.models.subject import SubjectModel

MAX_STRENGTH_GROWTH = 4.0  # factor between strengths tried while the target is not yet bracketed


@dataclass(frozen=True)
class StrengthSearch:
    """The strength found, the mean KL it gives, and how many strengths were tried."""

    strength: float
    kl: float
    steps: int


@contextlib.contextmanager
def steering(lm: SubjectModel, module: str, vector: torch.Tensor | None) -> Iterator[None]:
    """Adds `vector` ([d] or [batch, d]) to `module`'s output at every position of each forward pass inside."""
    if vector is None:
        yield
        return
    delta = vector.to(device=lm.device, dtype=lm.dtype)
    delta = delta[:, None, :] if delta.ndim == 2 else delta

    def hook(_module, _args, output):
        if isinstance(output, tuple):
            return (output[0] + delta, *output[1:])
        return output + delta

    handle = lm.module(module).register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def prompt_ids(lm: SubjectModel, example) -> list[int] | None:
    """A window up to and including the first token where the latent fires, BOS first (None: it never fires):
    the prompt a latent is steered on, from where it would act."""
    first = next((i for i, a in enumerate(example.activations) if a > 0), None)
    if first is None:
        return None
    return token_ids(lm, "".join(example.tokens[: first + 1]), bos=True)


class Steerer:
    """A batch of prompts (token ids, BOS first) left-padded, with their clean cache and next-token logits."""

    def __init__(self, lm: SubjectModel, prompts: Sequence[list[int]], module: str):
        if not prompts or min(len(p) for p in prompts) < 2:
            raise ValueError("steering needs prompts of at least two tokens (BOS and the token where it fires)")
        self.lm, self.module = lm, module
        width = max(len(p) for p in prompts)
        pad = getattr(lm.tokenizer, "pad_token_id", None) or 0
        self.ids = torch.tensor([[pad] * (width - len(p)) + list(p) for p in prompts], device=lm.device)
        self.mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=lm.device)
        self.positions = (self.mask.cumsum(-1) - 1).clamp(min=0)
        norms: list[torch.Tensor] = []
        with torch.inference_mode():
            self._cache = new_cache(lm)
            run_body(lm, self.ids[:, :-1], self._cache, attention_mask=self.mask[:, :-1],
                     position_ids=self.positions[:, :-1])
            handle = lm.module(module).register_forward_hook(
                lambda _m, _a, out: norms.append((out[0] if isinstance(out, tuple) else out)[:, -1].norm(dim=-1)))
            try:
                self.clean_logits = self._next_logits(None)
            finally:
                handle.remove()
        # The hooked module's mean output norm at the last prompt position: the natural unit of strength (1 where
        # the module is silent there, e.g. an MLP whose neurons are all off).
        self.scale = float(norms[0].float().mean()) or 1.0
        self.clean_logprobs = torch.log_softmax(self.clean_logits, dim=-1)

    def _next_logits(self, vector: torch.Tensor | None) -> torch.Tensor:
        """Logits after the last prompt token, steered by `vector` there ([P, vocab])."""
        with torch.inference_mode(), steering(self.lm, self.module, vector):
            hidden = run_body(self.lm, self.ids[:, -1:], copy.deepcopy(self._cache), attention_mask=self.mask,
                              position_ids=self.positions[:, -1:])
            return logits_of(self.lm, hidden[:, -1])

    def kl(self, direction: torch.Tensor, strength: float) -> float:
        """Mean over prompts of KL(clean || steered) of the next-token distribution, nats."""
        steered = torch.log_softmax(self._next_logits(direction * strength), dim=-1)
        p = self.clean_logprobs.exp()
        return float((p * (self.clean_logprobs - steered)).sum(-1).mean())

    def search(self, direction: torch.Tensor, target: float, tolerance: float, steps: int) -> StrengthSearch:
        """Bisection on log-strength for mean KL = target (within `tolerance` x target); the strength tried
        closest to the target (in log KL) when the budget of `steps` forward passes runs out."""
        low, high = 0.0, math.inf
        strength = self.scale
        best = None
        for step in range(1, steps + 1):
            kl = self.kl(direction, strength)
            miss = abs(math.log(max(kl, 1e-12) / target))
            if best is None or miss < best[0]:
                best = (miss, StrengthSearch(strength, kl, step))
            if abs(kl - target) <= tolerance * target:
                return StrengthSearch(strength, kl, step)
            if kl < target:
                low = strength
            else:
                high = strength
            if math.isinf(high):
                strength *= MAX_STRENGTH_GROWTH
            elif low == 0.0:
                strength /= MAX_STRENGTH_GROWTH
            else:
                strength = math.sqrt(low * high)
        return StrengthSearch(best[1].strength, best[1].kl, steps)

    def generate(self, vector: torch.Tensor | None, n_tokens: int) -> list[list[int]]:
        """Greedy continuations of every prompt, steered by `vector` from the last prompt position on."""
        cache = copy.deepcopy(self._cache)
        tokens, mask, position = self.ids[:, -1:], self.mask, self.positions[:, -1:]
        generated = []
        with torch.inference_mode(), steering(self.lm, self.module, vector):
            for _ in range(n_tokens):
                hidden = run_body(self.lm, tokens, cache, attention_mask=mask, position_ids=position)
                tokens = logits_of(self.lm, hidden[:, -1]).argmax(-1, keepdim=True)
                generated.append(tokens)
                mask = torch.cat([mask, torch.ones_like(tokens)], dim=1)
                position = position + 1
        return torch.cat(generated, dim=1).tolist()

    def promoted(self, vector: torch.Tensor, k: int) -> list[tuple[int, float]]:
        """The k tokens whose next-token probability rises most under steering (mean over prompts):
        (token id, probability gain), what an output-side explainer is shown."""
        gain = (torch.softmax(self._next_logits(vector), dim=-1) - self.clean_logprobs.exp()).mean(0)
        values, ids = gain.topk(min(k, gain.numel()))
        return [(int(i), float(v)) for i, v in zip(ids.tolist(), values.tolist())]
