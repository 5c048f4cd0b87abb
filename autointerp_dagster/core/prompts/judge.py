"""Judge prompts for detection and fuzzing scoring, in two forms.

Batched (several examples, answer a 0/1 list) suits strong API judges and keeps the
per-example cost low. Per-example (answer Yes/No) suits small local judges, whose
first-token log-probabilities give a graded P(yes) for AUC instead of a hard guess.

Detection: does the text activate the latent the explanation describes?
Fuzzing: are the marked tokens the ones the explanation describes? Every fuzzing example is
an activating text (see scorers/fuzzing.py), marked either where the latent fires or on other
tokens in runs of the same shape, and the wording says only that, so it hints at nothing a
judge could use instead of the explanation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence

from autointerp_dagster.core.prompts import ParseError, render_tokens
from autointerp_dagster.core.sampling import Example

_BATCH_ANSWER = (
    "Answer with only a JSON list holding one 0 or 1 per example, in order: {meaning}. "
    "For three examples where only the second {fits}, answer: [0, 1, 0]"
)
_DETECTION_SYSTEM = (
    "You test an explanation of what a neural-network latent responds to. You get the "
    "explanation and numbered text examples; the latent is active on some of them. For "
    "each example decide whether the latent is active on it, that is, whether the text "
    "contains what the explanation describes. "
    + _BATCH_ANSWER.format(meaning="1 = active, 0 = not active", fits="is active")
)
_FUZZING_SYSTEM = (
    "You test an explanation of what a neural-network latent responds to. You get the "
    "explanation and numbered text examples, each with some tokens marked <<like this>>. The "
    "latent is active somewhere in every example. In some examples the marks are on the tokens "
    "where it is active; in the others they are on other tokens of the text. For each example "
    "decide whether the marked tokens are what the explanation describes. "
    + _BATCH_ANSWER.format(meaning="1 = the marks fit, 0 = they do not", fits="fits")
)
_DETECTION_SINGLE_SYSTEM = (
    "You judge whether a neural-network latent is active on a text, given an explanation "
    "of what the latent responds to. Answer with one word: Yes or No."
)
_FUZZING_SINGLE_SYSTEM = (
    "You judge whether the tokens marked <<like this>> in a text are what an explanation "
    "of a neural-network latent describes. Answer with one word: Yes or No."
)
_DETECTION_QUESTION = "Is the latent active on this text? Answer Yes or No."
_FUZZING_QUESTION = "Do the marked tokens match the explanation? Answer Yes or No."


def _batched(system: str, explanation: str, texts: Sequence[str]) -> list[dict]:
    if not texts:
        raise ValueError("a batch needs at least one example")
    body = "\n".join(f"Example {i}: {text}" for i, text in enumerate(texts, 1))
    user = (
        f"Explanation: {explanation}\n\n{body}\n\n"
        f"Answer with a list of exactly {len(texts)} values (0 or 1)."
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _single(system: str, explanation: str, text: str, question: str) -> list[dict]:
    user = f"Explanation: {explanation}\nText: {text}\n{question}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def build_detection_messages(explanation: str, examples: Sequence[Example]) -> list[dict]:
    """Batched detection: plain numbered examples, answer a 0/1 list of the same length."""
    return _batched(_DETECTION_SYSTEM, explanation, [render_tokens(e.tokens) for e in examples])


def build_fuzzing_messages(
    explanation: str, examples: Sequence[Example], highlighted: Sequence[Collection[int]]
) -> list[dict]:
    """Batched fuzzing: `highlighted[i]` are the positions marked in `examples[i]`."""
    if len(highlighted) != len(examples):
        raise ValueError("one set of highlighted positions is needed per example")
    texts = [render_tokens(e.tokens, h) for e, h in zip(examples, highlighted)]
    return _batched(_FUZZING_SYSTEM, explanation, texts)


def build_detection_single_messages(explanation: str, example: Example) -> list[dict]:
    """Per-example detection, answered with one word so its logprobs give P(yes)."""
    return _single(
        _DETECTION_SINGLE_SYSTEM, explanation, render_tokens(example.tokens), _DETECTION_QUESTION
    )


def build_fuzzing_single_messages(
    explanation: str, example: Example, highlighted: Collection[int]
) -> list[dict]:
    """Per-example fuzzing, answered with one word so its logprobs give P(yes)."""
    return _single(
        _FUZZING_SINGLE_SYSTEM,
        explanation,
        render_tokens(example.tokens, highlighted),
        _FUZZING_QUESTION,
    )


_LIST = re.compile(r"\[([^\[\]]*)\]")
_ITEM_SEPARATORS = re.compile(r"[\s,;]+")
_BINARY = {"1": 1, "0": 0, "1.0": 1, "0.0": 0, "true": 1, "false": 0, "yes": 1, "no": 0}


def _binary_items(content: str) -> list[int] | None:
    items = [i.strip("\"'`*") for i in _ITEM_SEPARATORS.split(content.lower()) if i]
    if not items or any(i not in _BINARY for i in items):
        return None
    return [_BINARY[i] for i in items]


def parse_binary_list(text: str, n: int) -> list[int]:
    """The last bracketed list of 0/1 (or true/false, yes/no) values in `text`.

    Bracketed text that is not such a list (e.g. "[EXPLANATION]") is skipped. Spaces,
    trailing commas, quotes and code fences are tolerated. Raises ParseError when no
    list is found or the last one does not have exactly `n` entries.
    """
    lists = [v for m in _LIST.finditer(text) if (v := _binary_items(m.group(1))) is not None]
    if not lists:
        raise ParseError("no list of 0/1 values in the answer")
    if len(lists[-1]) != n:
        raise ParseError(f"expected {n} values, got {len(lists[-1])}")
    return lists[-1]


def _answer_word(token: str) -> str:
    """Token text without whitespace, tokenizer space markers, punctuation or case."""
    return token.strip().strip("\u2581\u0120").strip(" .,!:;*\"'").lower()


def yes_probability(top_logprobs_first_token: Mapping[str, float]) -> float | None:
    """P(yes) among yes-like and no-like first tokens, from their log-probabilities.

    Variants (" Yes", "YES", "no", ...) are summed per side before normalising, since
    the tokenizer splits the same word several ways. None when neither side appears.
    """
    mass = {"yes": 0.0, "no": 0.0}
    for token, logprob in top_logprobs_first_token.items():
        word = _answer_word(token)
        if word in mass:
            mass[word] += math.exp(logprob)
    total = mass["yes"] + mass["no"]
    if total == 0:
        return None
    return mass["yes"] / total


def parse_yes_no(text: str) -> int:
    """1 for a yes answer, 0 for no.

    The first word decides when it is yes/no ("No, because ..."); otherwise the answer
    must contain only one of the two words ("Answer: **Yes**"). Raises ParseError else.
    """
    words = re.findall(r"[a-z]+", text.lower())
    if words and words[0] in ("yes", "no"):
        return int(words[0] == "yes")
    found = {w for w in words if w in ("yes", "no")}
    if len(found) != 1:
        raise ParseError(f"no single yes/no answer in {text[:80]!r}")
    return int(found.pop() == "yes")
