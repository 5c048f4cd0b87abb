"""The simulation prompt (OpenAI's "all at once" simulator, Bills et al. 2023): a worked example, then the
explanation and one window's tokens, one `token<TAB>activation` line each, with a placeholder where the
activation would be. The model's next-token distribution at every placeholder, read in one forward pass, is
its prediction for that token from the explanation and the text before it; the placeholder itself never
shows it a value.

The scale is 0..`max_level` (default 9 in `SimulationConfig`): every tokenizer has the digits 0-9 as single
tokens, while "10" is two tokens in some (Qwen's), where its probability would hide inside "1".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from autointerp_dagster.core.prompts import clean_token

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


def simulation_prompt(explanation: str, tokens: Sequence[str], max_level: int) -> SimulationPrompt:
    """The prompt for one window; `offsets[i]` is where the placeholder of `tokens[i]` sits."""
    text = _HEADER.format(max_level=max_level) + _block(1, _EXAMPLE_EXPLANATION)
    text += "".join(f"{_line(t)}\t{round(level * max_level / 10)}\n" for t, level in _EXAMPLE)
    text += "<end>\n\n" + _block(2, explanation)
    offsets = []
    for token in tokens:
        text += f"{_line(token)}\t"
        offsets.append(len(text))
        text += f"{PLACEHOLDER}\n"
    return SimulationPrompt(text + "<end>\n", tuple(offsets))
