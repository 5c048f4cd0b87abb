"""Judge prompts for detection and fuzzing scoring, in two forms, each with few-shot turns.

Batched (several examples, answer a 0/1 list) is the paper's form for strong API judges and
keeps the per-example cost low. Per-example (answer Yes/No) suits small local judges, whose
first-token log-probabilities give a graded P(yes) for AUC instead of a hard guess. Both
forms open with short worked turns (user question, assistant answer), as the paper's judge
prompts do, which show the answer format better than a description of it.

Detection: does the text activate the latent the explanation describes?
Fuzzing: are the marked tokens the ones the explanation describes? Every fuzzing example is
an activating text (see scorers/fuzzing.py), marked either where the latent fires or on other
tokens in runs of the same shape, and the wording says only that, so it hints at nothing a
judge could use instead of the explanation. The worked fuzzing turns follow the same rule:
their wrong marks are the right ones moved along the text.

A batched answer may come after reasoning: the last 0/1 list in the reply counts, and
`list_probabilities` reads P(1) for each of its values from the reply's token logprobs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence

from autointerp_dagster.core.prompts import ParseError, render_tokens
from autointerp_dagster.core.sampling import Example

_INTRO = (
    "You test an explanation of what a neural-network latent responds to. You get the "
    "explanation and numbered text examples"
)
_BATCH_ANSWER = (
    "Answer with only a JSON list holding one 0 or 1 per example, in order: {meaning}. "
    "For three examples where only the second {fits}, answer: [0, 1, 0]"
)
_DETECTION_SYSTEM = (
    f"{_INTRO}; the latent is active on some of them. For each example decide whether the "
    "latent is active on it, that is, whether the text contains what the explanation "
    "describes. " + _BATCH_ANSWER.format(meaning="1 = active, 0 = not active", fits="is active")
)
_FUZZING_SYSTEM = (
    f"{_INTRO}, each with some tokens marked <<like this>>. The latent is active somewhere in "
    "every example. In some examples the marks are on the tokens where it is active; in the "
    "others they are on other tokens of the text. For each example decide whether the marked "
    "tokens are what the explanation describes. "
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

# Worked turns: (explanation, ((text, answer), ...)). Every fuzzing text contains the concept,
# marked on it (1) or on a run of the same length elsewhere (0), as in the real prompts.
Shots = tuple[tuple[str, tuple[tuple[str, int], ...]], ...]
_TIME = "units of time such as minutes, hours and days"
_NEGATION = "negation: \"not\" or \"n't\" after a verb"
_DETECTION_SHOTS: Shots = (
    (_TIME, (
        ("We waited nearly three hours for the delayed train.", 1),
        ("The recipe needs two cups of flour and an egg.", 0),
        ("She calls her sister every few weeks.", 1),
        ("The bridge is painted a bright shade of red.", 0),
    )),
    (_NEGATION, (
        ("The garden is full of tulips in April.", 0),
        ("I could not find my keys this morning.", 1),
        ("They didn't answer the phone all evening.", 1),
        ("He ran to catch the last bus home.", 0),
    )),
)
_FUZZING_SHOTS: Shots = (
    (_TIME, (
        ("We waited nearly three <<hours>> for the delayed train.", 1),
        ("She <<calls>> her sister every few weeks.", 0),
        ("The meeting ran ten <<minutes>> over schedule.", 1),
        ("After two days the <<fever>> finally broke.", 0),
    )),
    (_NEGATION, (
        ("They didn't <<answer>> the phone all evening.", 0),
        ("I could <<not>> find my keys this morning.", 1),
        ("He would<<n't>> say where he had been.", 1),
        ("<<Please>> do not touch the paintings.", 0),
    )),
)


def _batched_user(explanation: str, texts: Sequence[str]) -> str:
    body = "\n".join(f"Example {i}: {text}" for i, text in enumerate(texts, 1))
    return (
        f"Explanation: {explanation}\n\n{body}\n\n"
        f"Answer with a list of exactly {len(texts)} values (0 or 1)."
    )


def _batched(system: str, shots: Shots, explanation: str, texts: Sequence[str]) -> list[dict]:
    if not texts:
        raise ValueError("a batch needs at least one example")
    messages = [{"role": "system", "content": system}]
    for shot_explanation, pairs in shots:
        answer = "[" + ", ".join(str(a) for _, a in pairs) + "]"
        messages += [
            {"role": "user", "content": _batched_user(shot_explanation, [t for t, _ in pairs])},
            {"role": "assistant", "content": answer},
        ]
    return messages + [{"role": "user", "content": _batched_user(explanation, texts)}]


def _single(system: str, shots: Shots, explanation: str, text: str, question: str) -> list[dict]:
    """One worked Yes turn and one worked No turn (the first of each in `shots`), then the question."""
    worked = [(e, t, a) for e, pairs in shots for t, a in pairs]
    messages = [{"role": "system", "content": system}]
    for shot_explanation, shot_text, answer in (
        next(w for w in worked if w[2] == 1), next(w for w in worked if w[2] == 0)
    ):
        messages += [
            {"role": "user", "content": f"Explanation: {shot_explanation}\nText: {shot_text}\n{question}"},
            {"role": "assistant", "content": "Yes" if answer else "No"},
        ]
    return messages + [{"role": "user", "content": f"Explanation: {explanation}\nText: {text}\n{question}"}]


def build_detection_messages(explanation: str, examples: Sequence[Example]) -> list[dict]:
    """Batched detection: plain numbered examples, answer a 0/1 list of the same length."""
    texts = [render_tokens(e.tokens) for e in examples]
    return _batched(_DETECTION_SYSTEM, _DETECTION_SHOTS, explanation, texts)


def build_fuzzing_messages(
    explanation: str,
    examples: Sequence[Example],
    highlighted: Sequence[Collection[int]],
) -> list[dict]:
    """Batched fuzzing: `highlighted[i]` are the positions marked in `examples[i]`."""
    if len(highlighted) != len(examples):
        raise ValueError("one set of highlighted positions is needed per example")
    texts = [render_tokens(e.tokens, h) for e, h in zip(examples, highlighted)]
    return _batched(_FUZZING_SYSTEM, _FUZZING_SHOTS, explanation, texts)


def build_detection_single_messages(explanation: str, example: Example) -> list[dict]:
    """Per-example detection, answered with one word so its logprobs give P(yes)."""
    return _single(_DETECTION_SINGLE_SYSTEM, _DETECTION_SHOTS, explanation,
                   render_tokens(example.tokens), _DETECTION_QUESTION)


def build_fuzzing_single_messages(
    explanation: str, example: Example, highlighted: Collection[int]
) -> list[dict]:
    """Per-example fuzzing, answered with one word so its logprobs give P(yes)."""
    return _single(_FUZZING_SINGLE_SYSTEM, _FUZZING_SHOTS, explanation,
                   render_tokens(example.tokens, highlighted), _FUZZING_QUESTION)


_LIST = re.compile(r"\[([^\[\]]*)\]")
_ITEM = re.compile(r"[^\s,;]+")
_ITEM_QUOTES = "\"'`*"
_BINARY = {"1": 1, "0": 0, "1.0": 1, "0.0": 0, "true": 1, "false": 0, "yes": 1, "no": 0}


def _last_list(text: str) -> list[tuple[int, int]] | None:
    """(value, character index where it starts) for each entry of the last 0/1 list in `text`."""
    found = None
    for match in _LIST.finditer(text):
        entries = []
        for item in _ITEM.finditer(match.group(1)):
            word = item.group().lower().strip(_ITEM_QUOTES)
            if word not in _BINARY:
                break
            lead = len(item.group()) - len(item.group().lstrip(_ITEM_QUOTES))
            entries.append((_BINARY[word], match.start(1) + item.start() + lead))
        else:
            if entries:
                found = entries
    return found


def parse_binary_list(text: str, n: int) -> list[int]:
    """The last bracketed list of 0/1 (or true/false, yes/no) values in `text`.

    Reasoning before the list and bracketed text that is not such a list (e.g.
    "[EXPLANATION]") are skipped. Spaces, trailing commas, quotes and code fences are
    tolerated. Raises ParseError when no list is found or the last one does not have
    exactly `n` entries.
    """
    entries = _last_list(text)
    if entries is None:
        raise ParseError("no list of 0/1 values in the answer")
    if len(entries) != n:
        raise ParseError(f"expected {n} values, got {len(entries)}")
    return [value for value, _ in entries]


def list_probabilities(
    text: str, top_logprobs: Sequence[Mapping[str, float]] | None, n: int
) -> list[float] | None:
    """P(1) for each value of the last 0/1 list in `text`, from the reply's per-token logprobs.

    The generated tokens are matched against the end of `text` (each position's alternatives
    include the token chosen), so reasoning before the list costs nothing and end-of-turn
    tokens after it are skipped. At each value's token, P(1) is the mass of 1-like
    alternatives ("1", " 1", "1,", "[1", "true") over that of 1- and 0-like ones. None,
    for the whole list, when the logprobs are missing or do not line up with the text, two
    values share a token, or a value's position offers neither answer.
    """
    entries = _last_list(text)
    if not top_logprobs or entries is None or len(entries) != n:
        return None
    covering = _align_from_end(text, top_logprobs, entries[0][1])
    if covering is None:
        return None
    positions = [covering[start] for _, start in entries]
    if len(set(positions)) != n:
        return None
    probabilities = [_one_probability(top_logprobs[p]) for p in positions]
    return None if any(p is None for p in probabilities) else probabilities


def _align_from_end(
    text: str, top_logprobs: Sequence[Mapping[str, float]], first: int
) -> dict[int, int] | None:
    """Which token position produced each character of `text[first:]`, or None.

    Walks the positions backwards keeping every text offset some choice of alternatives
    reaches (a token is placed where it ends the text still unmatched), until one reaches
    `first`. Positions at the very end whose alternatives match nothing are skipped.
    """
    frontier = {len(text)}
    steps: list[tuple[int, dict[int, tuple[int, str]]]] = []
    for position in range(len(top_logprobs) - 1, -1, -1):
        reached: dict[int, tuple[int, str]] = {}
        for end in sorted(frontier):
            for token in top_logprobs[position]:
                start = end - len(token)
                if start >= 0 and text.startswith(token, start):
                    reached.setdefault(start, (end, token))
        if not reached and frontier == {len(text)}:
            continue  # a trailing token absent from the text, e.g. an end-of-turn marker
        if not reached:
            return None
        steps.append((position, reached))
        frontier = set(reached)
        done = [s for s in frontier if s <= first]
        if done:
            return _covering(steps, max(done), first)
    return None


def _covering(steps: list[tuple[int, dict[int, tuple[int, str]]]], start: int, first: int) -> dict[int, int]:
    """Follows the back pointers from the earliest step to the text's end."""
    covering = {}
    for position, reached in reversed(steps):
        end, _ = reached[start]
        for char in range(max(start, first), end):
            covering[char] = position
        start = end
    return covering


def _one_probability(alternatives: Mapping[str, float]) -> float | None:
    mass = [0.0, 0.0]
    for token, logprob in alternatives.items():
        value = _BINARY.get(token.strip(" \t\n\u2581\u0120[](),;.:" + _ITEM_QUOTES).lower())
        if value is not None:
            mass[value] += math.exp(logprob)
    total = mass[0] + mass[1]
    return mass[1] / total if total > 0 else None


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
