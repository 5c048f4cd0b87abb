"""A latent's digest: the tokens it fires on most (input side) and the tokens it promotes (output side): through
the unembedding (the logit lens of its decoder direction), or, for the output-side explainer, when the latent is
steered on its explainer windows (the tokens whose next-token probability rises most).

The explainer sees it beside the marked examples (Gur-Arieh et al. 2025: input and output descriptions together
beat either alone), and the top-tokens baseline explainer is made from it alone, so an LLM's explanation is
always shown against what a frequency count gets. Both sides are computed without the scorers' windows: the
input side counts only windows no scorer judges, the unembedding view reads only weights, and the steering
view steers only the explainer's windows (the intervention scorer steers the held-out ones). Steered tokens
are stored with the id of the settings that made them (kind `steered:<id>`), so explanations are never made
from steering done with other settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..coders import load_coder, lookup
from ..coders.decoders import steering_site
from ..keys import stable_id
from ..models.steering import Steerer, prompt_ids
from ..sampling import Example, ExampleSets, evenly_spaced

TOP_ACTIVATING = "top_activating"
PROMOTED = "promoted"
STEERED = "steered"  # stored as "steered:<settings id>"
# Tokens whose unembedding row is promoted must occur this often in the corpus: through a middle layer, the top
# of a 262k-token vocabulary is mostly fragments of other languages that tell a reader nothing about this text.
MIN_CORPUS_COUNT = 5
_NORM_NAMES = ("norm", "final_layernorm", "final_layer_norm", "ln_f")


@dataclass(frozen=True)
class LatentDigest:
    latent: int
    top_activating: tuple[tuple[str, int], ...] = ()  # (token, windows whose peak it is)
    promoted: tuple[tuple[str, float], ...] = ()  # (token, logit of the decoder direction)
    steered: tuple[tuple[str, float], ...] = ()  # (token, mean probability gain under steering)
    steering_id: str = ""  # of the settings that made `steered` (`steering_settings_id`)

    def output_side(self, view: str) -> tuple[tuple[str, float], ...]:
        """The promoted tokens of an output view: "unembedding" or "steering"."""
        return self.steered if view == "steering" else self.promoted


def promoted_tokens(model, directions: torch.Tensor, top: int, corpus_counts: np.ndarray | None = None,
                    min_count: int = MIN_CORPUS_COUNT) -> list[list[tuple[str, float]]]:
    """Per direction ([n, d_model]), the `top` tokens whose logits it raises most: the logit lens, i.e. the model's
    final norm and output embedding applied to the direction alone. `model` is a loaded `SubjectModel`.

    With `corpus_counts` (occurrences of every vocabulary id in the corpus), only tokens seen `min_count` times
    are ranked; special tokens never are.
    """
    body, lm = model.body, model.model
    norm = next((getattr(body, name) for name in _NORM_NAMES if hasattr(body, name)), None)
    unembedding = lm.get_output_embeddings().weight
    allowed = torch.ones(unembedding.shape[0], dtype=torch.bool)
    if corpus_counts is not None:
        counts = torch.from_numpy(np.asarray(corpus_counts))
        allowed[: len(counts)] = counts[: unembedding.shape[0]] >= min_count
        allowed[len(counts):] = False
    special = [i for i in getattr(model.tokenizer, "all_special_ids", []) if i < len(allowed)]
    allowed[special] = False
    candidates = allowed.nonzero().squeeze(1).to(unembedding.device)
    with torch.inference_mode():
        x = directions.to(device=unembedding.device, dtype=unembedding.dtype)
        if norm is not None:
            x = norm(x)
        logits = x @ unembedding[candidates].T
        values, index = logits.float().topk(min(top, len(candidates)), dim=-1)
    ids = candidates[index].cpu().tolist()
    return [[(model.tokenizer.decode([i]), round(v, 3)) for i, v in zip(row_ids, row_values)]
            for row_ids, row_values in zip(ids, values.cpu().tolist())]


def uses_steering(settings) -> bool:
    """Whether the explainer is shown steered tokens: the output-side view of a digest that has an output side and
    keeps some tokens."""
    explainer = settings.explainer
    return (explainer.digest == "input+output" and explainer.output_view == "steering"
            and settings.sampling.promoted_tokens > 0)


def steering_settings_id(settings) -> str:
    """Names everything that shapes the steered tokens: the explainer's windows and KL target, the strength
    search's tolerance and steps, and how many tokens are kept."""
    steering = settings.steering
    chosen = {"prompts": settings.explainer.steering_prompts, "kl_target": steering.kl_target,
              "tolerance": steering.kl_tolerance, "steps": steering.search_steps,
              "tokens": settings.sampling.promoted_tokens}
    return stable_id(chosen, 8)


def steered_for_explainer(settings, sae: str, latents: Sequence[ExampleSets], model) -> dict[int, list]:
    """The output-side explainer's view of each latent: steered on its explainer windows (never the scorers')."""
    coder = load_coder(lookup(settings, [sae])[sae].source, base_model=model.body, device=model.device)
    site = steering_site(coder, [s.latent for s in latents], model.body)
    steering = settings.steering
    prompts = {s.latent: steering_prompts(model, s.train, settings.explainer.steering_prompts) for s in latents}
    return steered_tokens(model, site.module, prompts, dict(zip(site.latents, site.directions)),
                          settings.sampling.promoted_tokens, steering.kl_target, steering.kl_tolerance,
                          steering.search_steps)


def steering_prompts(lm, windows: Sequence[Example], n: int) -> list[list[int]]:
    """Up to `n` of a latent's windows, spread over its activation quantiles, each cut where it first fires."""
    cut = (prompt_ids(lm, window) for window in evenly_spaced(windows, n, key=lambda w: w.quantile or 0))
    return [ids for ids in cut if ids is not None]


def steered_tokens(lm, module: str, prompts: dict[int, list[list[int]]], directions: dict[int, torch.Tensor],
                   top: int, kl_target: float, tolerance: float, steps: int) -> dict[int, list[tuple[str, float]]]:
    """Per latent, the `top` tokens whose next-token probability rises most (mean over its `prompts`, token ids
    cut where it first fires) when its unit direction is added at `module` with the strength that makes the mean
    KL(clean || steered) hit `kl_target`. A latent without prompts gets none."""
    out = {}
    for latent, direction in directions.items():
        if not prompts.get(latent):
            out[latent] = []
            continue
        steerer = Steerer(lm, prompts[latent], module)
        found = steerer.search(direction, kl_target, tolerance, steps)
        out[latent] = [(lm.tokenizer.decode([i]), round(gain, 4))
                       for i, gain in steerer.promoted(direction * found.strength, top)]
    return out


def digest_rows(sae: str, digests: Sequence[LatentDigest]) -> list[dict]:
    """Rows of the `latent_digest` table: one per (latent, kind, rank)."""
    return [{"sae": sae, "latent": d.latent, "kind": kind, "rank": rank, "token": token, "value": float(value)}
            for d in digests for kind, pairs in ((TOP_ACTIVATING, d.top_activating), (PROMOTED, d.promoted),
                                                 (f"{STEERED}:{d.steering_id}", d.steered))
            for rank, (token, value) in enumerate(pairs)]


def digests_from_rows(rows: Sequence[dict]) -> dict[int, LatentDigest]:
    """The inverse of `digest_rows` (rows in any order)."""
    parts: dict[int, dict] = {}
    for r in sorted(rows, key=lambda r: (r["latent"], r["kind"], r["rank"])):
        part = parts.setdefault(r["latent"], {TOP_ACTIVATING: [], PROMOTED: [], STEERED: [], "steering_id": ""})
        kind, _, steering_id = r["kind"].partition(":")
        part[kind].append((r["token"], int(r["value"]) if kind == TOP_ACTIVATING else r["value"]))
        if kind == STEERED:
            part["steering_id"] = steering_id
    return {latent: LatentDigest(latent, tuple(p[TOP_ACTIVATING]), tuple(p[PROMOTED]), tuple(p[STEERED]),
                                 p["steering_id"]) for latent, p in parts.items()}


def top_tokens_explanation(digest: LatentDigest, n: int) -> str | None:
    """The baseline explanation: the latent's `n` most frequent peak tokens, as a reader would write them."""
    tokens = [token for token, _ in digest.top_activating[:n]]
    if not tokens:
        return None
    return "the words " + ", ".join(f'"{t}"' for t in tokens)
