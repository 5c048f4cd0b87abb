"""Prompt text for the explainer and the judges, and the parsers for their answers.

Shared here: the error raised when an answer cannot be parsed (callers retry or record
a failure; no placeholder explanation is ever invented) and the token rendering that
both the explainer and the fuzzing judge use, so they mark tokens the same way.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from autointerp_dagster.core.sampling import Example

HIGHLIGHT_OPEN = "<<"
HIGHLIGHT_CLOSE = ">>"

_ESCAPES = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


class ParseError(ValueError):
    """An LLM answer lacked the required form (explanation line, 0/1 list, yes/no)."""


def clean_token(token: str) -> str:
    """Shows control characters as escapes so one example stays on one prompt line."""
    return token.translate(_ESCAPES)


def render_tokens(tokens: Sequence[str], highlighted: Collection[int] = ()) -> str:
    """Joins tokens, wrapping each run of consecutive highlighted positions in << >>.

    Whitespace at the edges of a run goes outside the markers (`200 <<grams>>`, not
    `200<< grams>>`), which reads like ordinary text while keeping every character.
    """
    marked = set(highlighted)
    parts: list[str] = []
    i = 0
    while i < len(tokens):
        j = i + 1
        while j < len(tokens) and (j in marked) == (i in marked):
            j += 1
        text = "".join(clean_token(t) for t in tokens[i:j])
        core = text.strip()
        if i in marked and core:
            lead = text[: len(text) - len(text.lstrip())]
            trail = text[len(text.rstrip()) :]
            text = f"{lead}{HIGHLIGHT_OPEN}{core}{HIGHLIGHT_CLOSE}{trail}"
        elif i in marked:
            text = f"{HIGHLIGHT_OPEN}{text}{HIGHLIGHT_CLOSE}"
        parts.append(text)
        i = j
    return "".join(parts)


def active_positions(example: Example, threshold: float) -> tuple[int, ...]:
    """Positions whose activation exceeds `threshold` times the example's own maximum.

    An example that never activates (maximum <= 0) has no active positions.
    """
    peak = example.max_activation
    if peak <= 0:
        return ()
    return tuple(i for i, a in enumerate(example.activations) if a > threshold * peak)
