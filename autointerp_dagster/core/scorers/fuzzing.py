"""Fuzzing cases as the paper defines them: token-level precision on activating windows only.

Each held-out activating window is shown twice, once marked where the latent fires (label 1)
and once mis-marked (label 0), so both classes have the same size and the same texts and only
the marks differ (delphi's `fuzz_type="active"`). A judge must read the explanation to tell them
apart: nothing about where the marks sit may give the answer away. Windows are cut so the
latent peaks at a fixed index (24 of 32), and true marks always cover that peak while wrong
marks never may, so both copies are shown as crops of `len - len // 4` tokens, and:

- the wrong marks are the true marks moved by one shift `d` (same runs, lengths, gaps and
  count), onto tokens that are not active;
- the wrong copy's crop moves by the same `d`, so its marks sit where the true marks sit in a
  crop drawn from the same offsets as the true copy's. Every layout of marks (position,
  contiguity, count) is therefore equally likely in both classes, and a judge that looks only
  at the layout scores chance.

Both crops keep some active token in view. A window whose active tokens leave no
such shift (a latent active on most of it) cannot be mis-marked and is left out of fuzzing,
both copies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from autointerp_dagster.core.prompts import active_positions
from autointerp_dagster.core.sampling import Example
from autointerp_dagster.core.scorers.common import ScoringExample


@dataclass(frozen=True)
class Case:
    """One example as a judge sees it, and the right answer: detection shows `shown` plainly,
    fuzzing a crop of the window with `marks` (positions in the crop)."""

    source: ScoringExample  # the held-out example, for the judgment's identity
    shown: Example
    marks: tuple[int, ...]
    label: int


def fuzz_cases(activating: Sequence[ScoringExample], rng: np.random.Generator, threshold: float) -> list[Case]:
    """Two cases per window, correctly marked and mis-marked, copies a window count apart.

    Windows are taken in a seeded random order. The first copy of each comes in a random class
    and its twin, in the other class, in the same window order after all first copies: prompts
    of consecutive cases then never hold both copies of a window (once there are more windows
    than a prompt holds), so the judge never compares a text with itself, and every prompt
    gets a random mix of classes.
    """
    first, second = [], []
    for w in rng.permutation(len(activating)):
        source = activating[w]
        pair = marked_pair(source.example, rng, threshold)
        if pair is None:
            continue
        (right, right_marks), (wrong, wrong_marks) = pair
        cases = [Case(source, right, right_marks, 1), Case(source, wrong, wrong_marks, 0)]
        if rng.random() < 0.5:
            cases.reverse()
        first.append(cases[0])
        second.append(cases[1])
    return first + second


def marked_pair(
    example: Example, rng: np.random.Generator, threshold: float
) -> tuple[tuple[Example, tuple[int, ...]], tuple[Example, tuple[int, ...]]] | None:
    """((crop, true marks), (crop, wrong marks)) for one window; None when it cannot be mis-marked.

    True marks: the tokens above `threshold` times the window's maximum. Both crops show some
    of them, so the concept is in view in every example and fuzzing does not turn into
    detection. Crop offsets are drawn independently for the two copies from the
    offsets that allow a shift, and the shift uniformly from those valid for the wrong copy's.
    """
    width = len(example.tokens)
    margin = width // 4
    length = width - margin
    active = set(active_positions(example, threshold))
    if margin < 1 or not active:
        return None

    def shown(offset: int) -> list[int]:
        return [p for p in sorted(active) if offset <= p < offset + length]

    def shifts(offset: int) -> list[int]:
        marks = shown(offset)
        return [
            d for d in range(-offset, margin - offset + 1)
            if d and marks and shown(offset + d) and not any(p + d in active for p in marks)
        ]

    offsets = [o for o in range(margin + 1) if shifts(o)]
    if not offsets:
        return None
    right, wrong = (int(o) for o in rng.choice(offsets, size=2))
    d = int(rng.choice(shifts(wrong)))
    return (
        (_crop(example, right, length), tuple(p - right for p in shown(right))),
        (_crop(example, wrong + d, length), tuple(p - wrong for p in shown(wrong))),
    )


def _crop(example: Example, start: int, length: int) -> Example:
    end = start + length
    return replace(
        example,
        tokens=example.tokens[start:end],
        activations=example.activations[start:end],
        normalized=example.normalized[start:end],
        start=example.start + start,
    )
