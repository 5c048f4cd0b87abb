"""The simulation prompts (OpenAI's simulator, Bills et al. 2023), in two forms.

All at once (`simulation_prompt`): a worked example, then the explanation and one window's tokens, one
`token<TAB>activation` line each, with a placeholder where the activation would be. The model's next-token
distribution at every placeholder, read in one forward pass, is its prediction for that token from the
explanation and the text before it; the placeholder itself never shows it a value.

Chat (`simulation_chat_messages`, for APIs that return logprobs of generated tokens only): the same lines
with "?" are sent as a chat turn after a worked turn, and the model writes them back filled in. Each value's
distribution is the top logprobs of the token it writes right after a tab (`chat_slot_logprobs`); its own
earlier values are in its context, as the one-at-a-time simulator's are.

The scale is 0..`max_level` (default 9 in `SimulationConfig`): every tokenizer has the digits 0-9 as single
tokens, while "10" is two tokens in some (Qwen's), where its probability would hide inside "1".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from autointerp_dagster.core.prompts import ParseError, clean_token

PLACEHOLDER = "?"  # a token boundary after the tab in common tokenizers; never a digit
_HEADER = (
    "We're studying neurons in a neural network. Each neuron looks for some particular thing in a short "
    "document. Look at the explanation of what the neuron does, and predict how strongly it fires on each token.\n\n"
    "The activation format is token<tab>activation. Activations go from 0 to {max_level}; \"?\" marks an "
    "activation to predict. Most activations are 0.\n\n"
)
# One worked example (levels on a 0-10 scale, rescaled to the prompt's).
_EXAMPLE_EXPLANATION = 'the word "and" joining two clauses'
_EXAMPLE = (("The", 0), (" cat", 0), (" sat", 0), (" on", 0), (" the", 0), (" mat", 0), (",", 0), (" and", 10),
            (" the", 0), (" dog", 0), (" slept", 0), (" by", 0), (" the", 0), (" fire", 0), (" and", 7),
            (" dreamed", 0), (".", 0))


@dataclass(frozen=True)
class SimulationPrompt:
    """The prompt text and, per window token, the character offset of its placeholder."""

    text: str
    offsets: tuple[int, ...]


def _line(token: str) -> str:
    return clean_token(token) or "\u2205"  # an empty token still gets its own, visible line


def _block(number: int, explanation: str) -> str:
    return f"Neuron {number}\nExplanation of neuron {number} behavior: {explanation.strip()}\nActivations:\n<start>\n"


def _worked_lines(max_level: int) -> str:
    """The worked example's `token<TAB>activation` lines, its 0-10 levels rescaled to 0..max_level."""
    return "".join(f"{_line(t)}\t{round(level * max_level / 10)}\n" for t, level in _EXAMPLE)


def simulation_prompt(explanation: str, tokens: Sequence[str], max_level: int) -> SimulationPrompt:
    """The prompt for one window; `offsets[i]` is where the placeholder of `tokens[i]` sits."""
    text = _HEADER.format(max_level=max_level) + _block(1, _EXAMPLE_EXPLANATION)
    text += _worked_lines(max_level)
    text += "<end>\n\n" + _block(2, explanation)
    offsets = []
    for token in tokens:
        text += f"{_line(token)}\t"
        offsets.append(len(text))
        text += f"{PLACEHOLDER}\n"
    return SimulationPrompt(text + "<end>\n", tuple(offsets))


_CHAT_SYSTEM = (
    "We're studying neurons in a neural network. Each neuron looks for some particular thing in a short "
    "document. Given the explanation of what a neuron does and a document cut into tokens, one token<tab>? "
    "line each, predict how strongly the neuron fires on each token: copy every line in order, replacing the ? "
    "with an activation from 0 to {max_level} (one digit). Most activations are 0. Write only the lines."
)


def _chat_user(explanation: str, tokens: Sequence[str]) -> str:
    lines = "".join(f"{_line(t)}\t{PLACEHOLDER}\n" for t in tokens)
    return f"Explanation: {explanation.strip()}\nTokens:\n{lines}"


def simulation_chat_messages(explanation: str, tokens: Sequence[str], max_level: int) -> list[dict]:
    """The chat form for one window: a worked turn (the example neuron), then this window with "?" values."""
    return [{"role": "system", "content": _CHAT_SYSTEM.format(max_level=max_level)},
            {"role": "user", "content": _chat_user(_EXAMPLE_EXPLANATION, [t for t, _ in _EXAMPLE])},
            {"role": "assistant", "content": _worked_lines(max_level)},
            {"role": "user", "content": _chat_user(explanation, tokens)}]


def chat_answer_tokens(n_tokens: int) -> int:
    """A generation budget for `n_tokens` lines: a line is the token (a few tokens), a tab, a digit, a newline."""
    return 8 * n_tokens + 16


def chat_slot_logprobs(top_logprobs: list[dict[str, float]] | None, n_tokens: int,
                       max_level: int) -> list[dict[str, float]]:
    """Per window token, digit -> logprob at the value the reply wrote for it; raises ParseError.

    The reply is greedy (temperature 0), so each generated token is the likeliest of its top logprobs; read
    from those, not from the reply's text, a token holding part of a character (a byte fallback) cannot
    misalign anything. A value slot is a token that follows one ending in a tab, or a tab and a digit where the
    tokenizer merges them. Alternatives that are the same digit written differently ("0", " 0", "\t0") are one
    value: their probabilities add. A reply with another number of values than the window has tokens is
    refused: values cannot be assigned to tokens with confidence then.
    """
    if not top_logprobs:
        raise ParseError("no logprobs came back: the chat simulator needs a server that returns top logprobs")
    slots, previous = [], ""
    for top in top_logprobs:
        if not top:
            raise ParseError("a generated token came back without logprobs")
        token = max(top.items(), key=lambda kv: kv[1])[0]
        if previous.endswith("\t") or (token.startswith("\t") and token[1:].strip().isdigit()):
            digits: dict[str, float] = {}
            for key, logprob in top.items():
                value = key.strip()
                if value.isdigit() and int(value) <= max_level:
                    digits[value] = float(np.logaddexp(digits[value], logprob)) if value in digits else logprob
            slots.append(digits)
        previous = token
    if len(slots) != n_tokens:
        raise ParseError(f"the reply has {len(slots)} activation values for {n_tokens} tokens")
    return slots
