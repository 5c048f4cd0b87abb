"""The explainer prompt: show a latent's activating examples, ask for a short explanation.

By default the answer is the `[EXPLANATION]:` line alone (the paper's explainer); the
chain-of-thought variant (`reasoning`) asks for a step-by-step analysis first and the
answer must end with that line. `parse_explanation` extracts it or
raises `ParseError`; callers retry with `explanation_retry_message()` and record a
failure if that also fails, rather than storing a made-up explanation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from autointerp_dagster.core.config import HIGHLIGHT_THRESHOLD
from autointerp_dagster.core.prompts import (
    ParseError,
    active_positions,
    clean_token,
    render_tokens,
)
from autointerp_dagster.core.sampling import ACTIVATING, Example

ANSWER_PREFIX = "[EXPLANATION]:"
ACTIVE_HEADER = "Examples where the latent is active:"
INACTIVE_HEADER = "Examples where the latent is NOT active:"

_SYSTEM = (
    "You explain what one latent (feature) of a neural network responds to. You will see "
    "text examples where it is active; the tokens where it fires are marked <<like this>>"
    "{activation_note}. Find what the marked tokens and their context have in common. "
    "Give a concise explanation, a short phrase rather than a sentence, specific enough "
    "to predict which tokens the latent fires on. Do not mention the markers or list the "
    "examples.{contrast_note}{digest_note}\n"
    "{answer_note}\n"
    f"{ANSWER_PREFIX} <your explanation>"
)
_DIRECT_NOTE = "Answer with one line only, of the form:"
# Chain of thought: the stages of delphi's CoT explainer (marked tokens, their context, a hypothesis).
_STEPS_NOTE = (
    "Think step by step before answering:\n"
    "Step 1. List up to five marked tokens and what they share.\n"
    "Step 2. Say what the text around the marked tokens shares.\n"
    "Step 3. Check a hypothesis against every example{contrast_step}.\n"
    "Then end with a last line of the form:"
)
_CONTRAST_STEP = ", and against the examples where the latent is NOT active"
# With the answer prefilled, the model sees no answer template (small models echo it back), and the
# prefill starts a sentence it can only finish with what the words share (without it, the 1.5B judge
# answered with the prompt's own words: "Examples where the latent is active").
_PREFILL_SYSTEM = (
    "In each text below, some words are marked with << and >>. Name what the marked words have in common "
    "(for example: names of kings, verbs of speaking, the word \"and\" starting a clause), in a few words."
    "{contrast_note}{digest_note}"
)
_PREFILL_QUESTION = "What do the marked words have in common?"
_DIGEST_QUESTION = "Which words are marked most often, and what do they have in common?"
DIGESTS = ("none", "input", "input+output")
_TOP_LINE = "Marked most often (times it was the strongest token of a text):"
_PROMOTED_LINE = "Words it makes the model predict next:"
_DIGEST_NOTES = {
    "none": "",
    "input": " After the examples, a line counts the words marked most often over many more texts. Start your "
             "answer with the two or three most typical of them, quoted, then say what they share.",
    "input+output": " After the examples, a line counts the words marked most often over many more texts, and "
                    "another lists the words it makes the model predict next. Start your answer with the two or "
                    "three most typical marked words, quoted, then say what they share.",
}
PREFILLED_ANSWER = f"{ANSWER_PREFIX} The marked words are"
_ACTIVATION_NOTE = (
    ", and a line after each example lists the marked tokens with the latent's "
    "strength from 0 to 10"
)
_CONTRAST_NOTE = (
    " The examples under \"Examples where the latent is NOT active\" resemble the active "
    "ones but the latent stays silent on them: your explanation must tell the two apart."
)


def format_example_for_explainer(
    example: Example,
    highlight_threshold: float = HIGHLIGHT_THRESHOLD,
    show_activations: bool = True,
) -> str:
    """The example's text with strong tokens marked, plus their 0-10 strengths.

    A token is marked when its activation exceeds `highlight_threshold` times the
    example's own maximum, so weak tails do not blur which tokens matter.
    """
    positions = active_positions(example, highlight_threshold)
    text = render_tokens(example.tokens, positions)
    if not (show_activations and positions):
        return text
    pairs = ", ".join(
        f'("{clean_token(example.tokens[i]).strip() or clean_token(example.tokens[i])}" : '
        f"{example.normalized[i]})"
        for i in positions
    )
    return f"{text}\nActivations: {pairs}"


def _example_from_marked(marked: str, strengths: Sequence[int]) -> Example:
    """A hand-written few-shot example: `<<...>>` spans become activations.

    Words are the tokens; each marked word takes the next value from `strengths`.
    """
    plain = re.sub(r"<<|>>", "", marked)
    inside = [False] * len(plain)
    offset = 0
    for m in re.finditer(r"<<(.*?)>>", marked):
        start = m.start() - offset
        inside[start : start + len(m.group(1))] = [True] * len(m.group(1))
        offset += 4
    tokens, values = [], []
    remaining = iter(strengths)
    for m in re.finditer(r"\s*(?:\w+|[^\w\s])", plain):
        tokens.append(m.group())
        values.append(next(remaining) if any(inside[m.start() : m.end()]) else 0)
    return Example(
        tokens=tuple(tokens),
        activations=tuple(float(v) for v in values),
        normalized=tuple(values),
        kind=ACTIVATING,
        row=-1,
        start=0,
    )


# Each shot: (active examples with strengths, inactive look-alikes, the three steps of the
# chain-of-thought answer, sentence added to its last step in the contrastive prompt, explanation,
# the shot's digest (top tokens with counts, promoted tokens), and the explanation a digest prompt answers
# with: the typical tokens first, then what they share).
_FEW_SHOT = (
    (
        (
            ("Mix 200 <<grams>> of flour with the butter.", (9,)),
            ("The trail is about 5 <<miles>> long and steep.", (8,)),
            ("She ordered a 12-<<inch>> pizza for the party.", (7,)),
        ),
        (),
        (
            'Marked: "grams", "miles", "inch". All are units of measurement.',
            "Each comes directly after a number (200, 5, 12).",
            "Every example is a unit right after a number; the sentences are otherwise unrelated.",
        ),
        "",
        "units of measurement right after a number",
        ((("grams", 14), ("miles", 11), ("inch", 9), ("feet", 8), ("kg", 5)), ("of", "per", "long", "wide", "away")),
        '"grams", "miles", "inch": units of measurement right after a number',
    ),
    (
        (
            ('"We leave at dawn," he <<said>> quietly.', (10,)),
            ('"Is it raining?" she <<asked>>.', (8,)),
            ('"Not yet," the captain <<replied>>, looking away.', (9,)),
        ),
        (),
        (
            'Marked: "said", "asked", "replied". All are verbs of speaking.',
            "Each follows a closing quotation mark and the speaker's name or pronoun.",
            "In every example the verb attributes the preceding quotation to its speaker.",
        ),
        "",
        "speech verbs attributing a quote (said, asked, replied)",
        ((("said", 31), ("asked", 12), ("replied", 9), ("cried", 6), ("answered", 5)),
         ("quietly", "softly", "to", "again", "angrily")),
        '"said", "asked", "replied": verbs of speaking after a quotation',
    ),
    (
        (
            ("He opened a savings account at the <<bank>> downtown.", (10,)),
            ("The <<bank>> raised its interest rates again.", (9,)),
            ("She called the <<bank>> about a missing deposit.", (8,)),
        ),
        ("They had a picnic on the river bank.", "Snow piled up in a bank along the road."),
        (
            'Marked: "bank" in all three examples.',
            "The context is money: a savings account, interest rates, a deposit.",
            "Every example uses \"bank\" in the sense of a financial institution.",
        ),
        " The inactive examples use \"bank\" for a riverside or a pile, so only the "
        "financial sense counts.",
        "\"bank\" as a financial institution",
        ((("bank", 40), ("banks", 6), ("Bank", 3)), ("account", "loan", "deposit", "teller", "robbery")),
        '"bank", "banks": a bank as a place that keeps money',
    ),
)


def format_digest(top_tokens: Sequence[tuple[str, int]], promoted: Sequence[str], shown: int = 8) -> str:
    """The digest lines: the tokens the latent fires on most, with counts, and the tokens it promotes."""
    lines = []
    if top_tokens:
        lines.append(f"{_TOP_LINE} " + ", ".join(f'"{clean_token(t)}" ({n})' for t, n in top_tokens[:shown]))
    if promoted:
        lines.append(f"{_PROMOTED_LINE} " + ", ".join(f'"{clean_token(t).strip()}"' for t in promoted[:shown]))
    return "\n".join(lines)


def _examples_message(
    examples: Sequence[Example],
    hard_negatives: Sequence[Example],
    show_activations: bool,
    highlight_threshold: float,
    digest: str = "",
) -> str:
    lines = [ACTIVE_HEADER]
    for i, example in enumerate(examples, 1):
        lines.append(
            f"Example {i}: "
            + format_example_for_explainer(example, highlight_threshold, show_activations)
        )
    if hard_negatives:
        lines += ["", INACTIVE_HEADER]
        for i, example in enumerate(hard_negatives, len(examples) + 1):
            lines.append(f"Example {i}: {render_tokens(example.tokens)}")
    if digest:
        lines += ["", digest]
    return "\n".join(lines)


def _few_shot_messages(contrastive: bool, show_activations: bool, reasoning: bool, digest: str,
                       question: str = "") -> list[dict]:
    """The demonstrations: answers are the explanation line alone, or the steps and then the line. With a
    `digest` ("none", "input", "input+output") each shot shows its digest and answers with its typical tokens."""
    messages = []
    for active, inactive, steps, contrast, explanation, (top, promoted), token_explanation in _FEW_SHOT:
        shown = [_example_from_marked(text, strengths) for text, strengths in active]
        negatives = (
            [_example_from_marked(text, ()) for text in inactive] if contrastive else []
        )
        lines = format_digest(top if digest != "none" else (), promoted if digest == "input+output" else ())
        answer = f"{ANSWER_PREFIX} {token_explanation if lines else explanation}"
        if reasoning:
            *first, last = steps
            analysis = [*first, last + (contrast if negatives else "")]
            answer = "\n".join(f"Step {i}. {step}" for i, step in enumerate(analysis, 1)) + "\n" + answer
        content = _examples_message(shown, negatives, show_activations, 0.0, lines)
        messages += [
            {"role": "user", "content": f"{content}\n\n{question}" if question else content},
            {"role": "assistant", "content": answer},
        ]
    return messages


def prefilled_answer(digest: str) -> str:
    """The start of the answer a prefilled prompt gives the model: with a digest, the bare answer marker (the
    shots show the form: typical tokens, then what they share); without, a sentence to finish."""
    return f"{ANSWER_PREFIX}" if digest != "none" else PREFILLED_ANSWER


def build_explainer_messages(
    examples: Sequence[Example],
    show_activations: bool = True,
    few_shot: bool = True,
    hard_negatives: Sequence[Example] | None = None,
    highlight_threshold: float = HIGHLIGHT_THRESHOLD,
    reasoning: bool = False,
    prefill: bool = False,
    digest: str = "none",
    top_tokens: Sequence[tuple[str, int]] = (),
    promoted: Sequence[str] = (),
) -> list[dict]:
    """OpenAI-style chat messages asking for one latent's explanation, examples in the order given.

    With `hard_negatives` (similar-looking examples where the latent is silent) the
    prompt becomes contrastive: they are shown in their own section and the model is
    told the explanation must separate the two groups. Without `reasoning` the model is
    asked for the answer line alone (the paper's explainer); with it, for a step-by-step
    analysis ending with that line (chain of thought). With `prefill` (small local models)
    the messages end with the model's answer started (`prefilled_answer`). `digest` ("input",
    "input+output") adds the latent's most frequent peak tokens (`top_tokens`) and the tokens its decoder
    promotes (`promoted`) after the examples, and asks for the typical tokens and what they share.
    """
    if not examples:
        raise ValueError("the explainer needs at least one example")
    if prefill and reasoning:
        raise ValueError("a prefilled answer leaves no room for reasoning")
    if digest not in DIGESTS:
        raise ValueError(f"digest must be one of {', '.join(DIGESTS)}, not {digest!r}")
    contrastive = bool(hard_negatives)
    notes = {"contrast_note": _CONTRAST_NOTE if contrastive else "",
             "digest_note": _DIGEST_NOTES[digest]}
    if prefill:
        system = _PREFILL_SYSTEM.format(**notes)
    else:
        steps = _STEPS_NOTE.format(contrast_step=_CONTRAST_STEP if contrastive else "")
        system = _SYSTEM.format(activation_note=_ACTIVATION_NOTE if show_activations else "",
                                answer_note=steps if reasoning else _DIRECT_NOTE, **notes)
    question = _PREFILL_QUESTION if prefill and digest == "none" else _DIGEST_QUESTION if prefill else ""
    messages = [{"role": "system", "content": system}]
    if few_shot:
        messages += _few_shot_messages(contrastive, show_activations, reasoning, digest, question)
    lines = format_digest(top_tokens if digest != "none" else (), promoted if digest == "input+output" else ())
    shown = _examples_message(examples, hard_negatives or (), show_activations, highlight_threshold, lines)
    if prefill:
        return messages + [{"role": "user", "content": f"{shown}\n\n{question}"},
                           {"role": "assistant", "content": prefilled_answer(digest)}]
    return messages + [{"role": "user", "content": shown}]


_MARKER = re.compile(r"\[\s*explanation\s*\]", re.IGNORECASE)
# Without brackets, only "Explanation:" opening a line counts, to avoid matching prose.
_LOOSE_MARKER = re.compile(r"^[\s*_#>]*explanation\s*[*_]*\s*:", re.IGNORECASE | re.MULTILINE)
_AFTER_MARKER = re.compile(r"^[ \t*_]*:?[ \t*_]*")
_SPECIAL_TOKENS = re.compile(r"(?:\s*(?:<end_of_turn>|<eos>|</s>|<\|[^|>]*\|>))+\s*$")
_PLACEHOLDER = re.compile(r"<[^<>]*(?:explanation|phrase)[^<>]*>|\.{3}|…", re.IGNORECASE)
_QUOTE_PAIRS = {'"': '"', "'": "'", "`": "`", "\u201c": "\u201d", "\u2018": "\u2019"}


def _clean_line(line: str) -> str:
    """Strips bullets, bold/italic markers and quotes wrapped around the whole answer."""
    line = _SPECIAL_TOKENS.sub("", line).strip()
    previous = None
    while line != previous:
        previous = line
        line = re.sub(r"^(?:[-•]\s+|[*_]+)", "", line)
        line = re.sub(r"[*_]+$", "", line).strip()
        close = _QUOTE_PAIRS.get(line[:1])
        if close and len(line) >= 2 and line.endswith(close) and close not in line[1:-1]:
            line = line[1:-1].strip()
    return line


def parse_explanation(text: str) -> str:
    """The explanation after the last `[EXPLANATION]:` marker, first non-empty line.

    Tolerates case, spacing, a missing colon or brackets ("Explanation:" at a line
    start), markdown bold and wrapping quotes. Raises ParseError when no marker or no
    explanation text is found, or when the model echoed the `<your explanation>` template.
    """
    matches = list(_MARKER.finditer(text)) or list(_LOOSE_MARKER.finditer(text))
    if not matches:
        raise ParseError(f"no {ANSWER_PREFIX} line in the answer")
    rest = _AFTER_MARKER.sub("", text[matches[-1].end() :], count=1)
    for line in rest.splitlines():
        cleaned = _clean_line(line)
        if cleaned:
            if _PLACEHOLDER.fullmatch(cleaned):
                raise ParseError("the answer repeated the template instead of an explanation")
            return cleaned
    raise ParseError(f"empty explanation after {ANSWER_PREFIX}")


_COUNT = re.compile(r"\s*\((?:\d+|[^()]*\b\d+\s+times?\b[^()]*)\)")


def without_counts(explanation: str) -> str:
    """The explanation without digest counts a model copied into it (`"upon" (12)` -> `"upon"`)."""
    return re.sub(r"\s+([,:;])", r"\1", _COUNT.sub("", explanation)).strip()


def explanation_retry_message() -> dict:
    """The user turn sent after an unparseable answer, asking for the required last line."""
    return {
        "role": "user",
        "content": (
            "Your answer did not end with the required line. Reply again and end with "
            f"one line of the form:\n{ANSWER_PREFIX} <your explanation>"
        ),
    }
