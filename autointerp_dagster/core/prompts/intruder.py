"""The intruder prompt (explanation-free scoring): numbered text windows, one of which does not belong with the
others, and the judge answers with that window's number."""

from __future__ import annotations

import re
from collections.abc import Sequence

from . import ParseError, render_tokens

_SYSTEM = (
    "You are given numbered text windows. All of them but one were chosen because one hidden feature of a language "
    "model is active in them, so they share something: a word, a kind of token, a topic, a grammatical role or a "
    "pattern. Exactly one window was chosen for a different feature: it is the intruder. Answer with the "
    "intruder's number only, as: Intruder: <number>"
)


def build_intruder_messages(windows: Sequence[Sequence[str]]) -> list[dict]:
    """`windows`: each window's tokens, in the order shown (numbered from 1)."""
    if len(windows) < 3:
        raise ValueError("an intruder task needs at least three windows")
    body = "\n".join(f"Window {i}: {render_tokens(tokens)}" for i, tokens in enumerate(windows, 1))
    return [{"role": "system", "content": _SYSTEM},
            {"role": "user", "content": f"{body}\n\nWhich window is the intruder (1-{len(windows)})?"}]


def parse_intruder(text: str, n: int) -> int:
    """The 0-based index of the window the answer names: the last `Intruder: k`, else the last number 1..n."""
    found = re.findall(r"intruder\D{0,12}?(\d+)", text, flags=re.IGNORECASE) or re.findall(r"\b(\d+)\b", text)
    for number in reversed(found):
        if 1 <= int(number) <= n:
            return int(number) - 1
    raise ParseError(f"no window number between 1 and {n} in the answer {text[-200:]!r}")
