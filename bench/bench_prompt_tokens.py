"""Prompt tokens spent per latent on explaining and scoring (detection + fuzzing).

The prompts are the ones `explain_latents` and `score_latents` really send (recorded by
a client that answers each in the expected format, so no retries), built from 32-token
windows of the embedded King James Bible. The "latent" fires on "LORD" (and weakly on
"God"), so explainer and fuzzing prompts carry realistic highlight and activation lines.

Tokens are counted with the tokenizer of a converted model under
$AUTOINTERP_HOME/models/converted/ when one exists (message contents plus 4 tokens a
message for the chat-turn markers); otherwise windows are whitespace-split words and
tokens are estimated as characters / 4. The output says which.

    .venv/bin/python bench/bench_prompt_tokens.py
"""

from __future__ import annotations

import re
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autointerp_dagster.core.config import SamplingConfig, load_settings  # noqa: E402
from autointerp_dagster.core.explain.explainers import ExplainerConfig, ExplainItem, explain_latents  # noqa: E402
from autointerp_dagster.core.llm import ChatRequest, ChatResult  # noqa: E402
from autointerp_dagster.core.models.embedded import kjv_documents  # noqa: E402
from autointerp_dagster.core.sampling import ACTIVATING, RANDOM_NEGATIVE, Example  # noqa: E402
from autointerp_dagster.core.scorers import (  # noqa: E402
    ScoreItem,
    ScorerConfig,
    ScoringExample,
    score_latents,
)

WINDOW = 32
MESSAGE_OVERHEAD = 4  # e.g. Gemma's "<start_of_turn>user\n" ... "<end_of_turn>\n"
DELPHI = {"n_train": 40, "n_activating": 50, "n_negative": 50, "batch_size": 5}


class RecordingClient:
    """Stands in for LLMClient: keeps every request and answers it in the expected format."""

    def __init__(self):
        self.requests: list[ChatRequest] = []

    def complete(self, requests: list[ChatRequest], on_progress=None) -> list[ChatResult]:
        self.requests += requests
        return [self._answer(r) for r in requests]

    @staticmethod
    def _answer(request: ChatRequest) -> ChatResult:
        prompt = request.messages[-1]["content"]
        if request.purpose.startswith("explain"):
            text = "[EXPLANATION]: the word LORD"
        elif "Answer Yes or No" in prompt or "Yes or No" in request.messages[0]["content"]:
            text = "Yes"
        else:
            text = str([1] * len(re.findall(r"^Example \d+:", prompt, re.MULTILINE)))
        return ChatResult(text, "ok", None, None, 0, 0, 0.0, False, uuid.uuid4().hex)


def find_tokenizer():
    """(tokenizer, folder) of the first converted model with a tokenizer, else (None, None)."""
    converted = load_settings().models_dir / "converted"
    for folder in sorted(converted.glob("*")):
        if (folder / "tokenizer.json").exists():
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(folder), folder
    return None, None


def windows(tokenizer, n_docs: int = 40) -> list[tuple[str, ...]]:
    """Consecutive 32-token windows of the first chapters, as token strings."""
    out = []
    for _, doc in zip(range(n_docs), kjv_documents()):
        if tokenizer is not None:
            ids = tokenizer(doc, add_special_tokens=False)["input_ids"]
            tokens = [tokenizer.decode([i]) for i in ids]
        else:
            tokens = re.findall(r"\s*\S+", doc)
        out += [tuple(tokens[s : s + WINDOW]) for s in range(0, len(tokens) - WINDOW + 1, WINDOW)]
    return out


def as_example(tokens: tuple[str, ...]) -> Example:
    strength = {"LORD": 1.0, "God": 0.5}
    acts = tuple(strength.get(t.strip(" ,.;:"), 0.0) for t in tokens)
    kind = ACTIVATING if max(acts) > 0 else RANDOM_NEGATIVE
    return Example(tokens, acts, tuple(int(round(10 * a)) for a in acts), kind, row=0, start=0)


def count_tokens(requests: list[ChatRequest], tokenizer) -> int:
    total = 0
    for request in requests:
        for message in request.messages:
            content = message["content"]
            if tokenizer is not None:
                total += len(tokenizer(content, add_special_tokens=False)["input_ids"])
            else:
                total += round(len(content) / 4)
            total += MESSAGE_OVERHEAD
    return total


def per_latent(
    examples: list[Example], tokenizer, n_train: int, n_activating: int, n_negative: int,
    scorer_config: ScorerConfig,
) -> dict[str, int]:
    """Prompt tokens by step for one latent; raises if the corpus slice is too small."""
    activating = [e for e in examples if e.kind == ACTIVATING]
    negatives = [e for e in examples if e.kind != ACTIVATING]
    if len(activating) < n_train + n_activating or len(negatives) < n_negative:
        raise SystemExit("not enough windows: raise n_docs")
    train, test = activating[:n_train], activating[n_train : n_train + n_activating]
    counts = {}
    client = RecordingClient()
    explain_latents(client, [ExplainItem(0, train)], ExplainerConfig())
    counts["explain"] = count_tokens(client.requests, tokenizer)
    item = ScoreItem(
        0, "the word LORD",
        [ScoringExample(e, "test", i) for i, e in enumerate(test)],
        [ScoringExample(e, "random", i) for i, e in enumerate(negatives[:n_negative])],
    )
    for scorer in ("detection", "fuzzing"):
        client = RecordingClient()
        score_latents(client, scorer, [item], scorer_config)
        counts[scorer] = count_tokens(client.requests, tokenizer)
        counts[f"{scorer}_prompts"] = len(client.requests)
    counts["total"] = counts["explain"] + counts["detection"] + counts["fuzzing"]
    return counts


def describe(name: str, counts: dict[str, int]) -> str:
    return (
        f"{name}: explain={counts['explain']} detection={counts['detection']} "
        f"({counts['detection_prompts']} prompts) fuzzing={counts['fuzzing']} "
        f"({counts['fuzzing_prompts']} prompts) total={counts['total']}"
    )


def main() -> None:
    tokenizer, folder = find_tokenizer()
    if tokenizer is not None:
        print(f"tokens: counted with the tokenizer of {folder} (+{MESSAGE_OVERHEAD} per message)")
    else:
        print("tokens: no converted model found; whitespace-split words, tokens estimated as chars/4")
    examples = [as_example(w) for w in windows(tokenizer)]
    sampling = SamplingConfig()
    ours = dict(n_train=sampling.n_train, n_activating=sampling.n_test, n_negative=sampling.n_random_negatives)
    print(
        f"ours: {ours['n_train']} explainer examples; {ours['n_activating']} activating + "
        f"{ours['n_negative']} non-activating scored, {WINDOW}-token windows"
    )

    delphi = per_latent(
        examples, tokenizer, DELPHI["n_train"], DELPHI["n_activating"], DELPHI["n_negative"],
        ScorerConfig(batch_size=DELPHI["batch_size"]),
    )
    print(describe("delphi_counts (OUR prompts at delphi's example counts, not delphi's own prompts)", delphi))
    per_example = per_latent(examples, tokenizer, **ours, scorer_config=ScorerConfig(mode="per_example"))
    print(describe("ours_per_example (one Yes/No prompt per example)", per_example))
    print(f"prompt_tokens_per_latent_per_example={per_example['total']}")
    batched = per_latent(examples, tokenizer, **ours, scorer_config=ScorerConfig())
    print(describe("ours_batched (default)", batched))
    print(f"prompt_tokens_per_latent_delphi_counts={delphi['total']}")
    print(f"prompt_tokens_per_latent={batched['total']}")


if __name__ == "__main__":
    main()
