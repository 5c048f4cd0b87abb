"""Fuzzing measures token-level precision: only a judge that reads the explanation can beat chance.

Windows here look like the sampled ones (32 tokens, the latent peaking at index 24, active runs
of one to three tokens, sometimes a second run). Judges that ignore the explanation and answer
from where the marks sit must score chance; a judge that knows the concept must not.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from autointerp_dagster.core.prompts import active_positions
from autointerp_dagster.core.sampling import ACTIVATING, RANDOM_NEGATIVE, Example
from autointerp_dagster.core.scorers import ScoreItem, ScorerConfig, ScoringExample, score_latents
from autointerp_dagster.core.scorers.fuzzing import fuzz_cases, marked_pair
from tests.openai_stub_server import StubLLMServer, stub_client

FILLER = [f"w{k}" for k in range(80)]
CONCEPT = [f"c{k}" for k in range(20)]  # the words a latent fires on: what its explanation would name
WIDTH, PEAK, THRESHOLD = 32, 24, 0.3


def synthetic_window(rng: np.random.Generator, activating: bool) -> Example:
    """A window like the sampled ones: concept words where the latent fires, filler elsewhere."""
    words = list(rng.choice(FILLER, WIDTH))
    acts = [0.0] * WIDTH
    if activating:
        length = int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))
        start = PEAK - int(rng.integers(length))
        runs = [(start, length, 1.0)]
        if rng.random() < 0.3:  # a weaker second peak earlier in the window
            runs.append((int(rng.integers(2, 18)), int(rng.integers(1, 3)), 0.6))
        for begin, n, peak in runs:
            for p in range(begin, begin + n):
                acts[p] = peak if p == PEAK or n == 1 else peak * 0.7
                words[p] = str(rng.choice(CONCEPT))
    tokens = tuple(f" {w}" for w in words)
    return Example(tokens, tuple(acts), tuple(int(10 * a) for a in acts),
                   ACTIVATING if activating else RANDOM_NEGATIVE, row=0, start=0)


def synthetic_items(explanation: str, n_latents: int = 60, per_class: int = 10) -> list[ScoreItem]:
    items = []
    for latent in range(n_latents):
        rng = np.random.default_rng([7, latent])
        items.append(ScoreItem(
            latent, explanation,
            [ScoringExample(synthetic_window(rng, True), "test", i) for i in range(per_class)],
            [ScoringExample(synthetic_window(rng, False), "random", i) for i in range(per_class)],
        ))
    return items


def shown_words(messages: list[dict]) -> list[list[tuple[str, bool]]]:
    """Per example of the question: its words, each with whether it is marked."""
    prompt = messages[-1]["content"]
    examples = []
    for line in re.findall(r"^(?:Example \d+|Text): (.*)$", prompt, re.MULTILINE):
        words = []
        for m in re.finditer(r"<<(.*?)>>|(\S+)", line):
            words += [(w, True) for w in m.group(1).split()] if m.group(1) is not None else [(m.group(2), False)]
        examples.append(words)
    return examples


def _marked(words):
    return [i for i, (_, marked) in enumerate(words) if marked]


# Judges that never read the explanation (the first three) and one that knows the concept.
def fixed_index(words) -> bool:
    """Delphi's peak position: is the token at len - len // 4 marked?"""
    return len(words) - len(words) // 4 in _marked(words)


def late_marks(words) -> bool:
    """Marks in the last 40% of the text, where the peak sits."""
    marked = _marked(words)
    return bool(marked) and np.mean(marked) >= 0.6 * len(words)


def one_run(words) -> bool:
    """All marks form one contiguous run."""
    marked = _marked(words)
    return bool(marked) and marked[-1] - marked[0] == len(marked) - 1


def knows_concept(words) -> bool:
    marked = [w for w, m in words if m]
    return bool(marked) and all(w in CONCEPT for w in marked)


JUDGES = {f.__name__: f for f in (fixed_index, late_marks, one_run, knows_concept)}


def reply(messages):
    judge = JUDGES[re.search(r"^Explanation: (\S+)", messages[-1]["content"], re.MULTILINE).group(1)]
    return "[" + ", ".join(str(int(judge(words))) for words in shown_words(messages)) + "]"


def pooled_balanced_accuracy(scores) -> float:
    judged = [j for s in scores for j in s.judgments if j.prediction is not None]
    assert len(judged) == sum(len(s.judgments) for s in scores), "every case should be judged"
    return balanced_accuracy_score([j.label for j in judged], [j.prediction for j in judged])


def test_judges_blind_to_the_explanation_score_chance_on_fuzzing(store):
    """60 latents x 10 windows x 2 copies. When the negatives were silent windows marked at random, these
    judges scored 0.96 (fixed index), 0.75 (late marks) and 0.80 (one run) here."""
    accuracy = {}
    with StubLLMServer(reply=reply) as server:
        client = stub_client(server, store)
        for name in JUDGES:
            accuracy[name] = pooled_balanced_accuracy(score_latents(client, "fuzzing", synthetic_items(name)))
    for name in ("fixed_index", "late_marks", "one_run"):
        assert abs(accuracy[name] - 0.5) < 0.04, accuracy
    assert accuracy["knows_concept"] > 0.95, accuracy


def test_fuzzing_cases_are_activating_windows_twice_with_same_shaped_wrong_marks():
    item = synthetic_items("x", n_latents=1, per_class=40)[0]
    cases = fuzz_cases(item.activating, np.random.default_rng(0), THRESHOLD)
    assert len(cases) == 80 and sum(c.label for c in cases) == 40
    n = len(cases) // 2
    for first, twin in zip(cases[:n], cases[n:]):  # each window once in each class, a window count apart
        assert first.source is twin.source and first.label + twin.label == 1
    for case in cases:
        window = case.source.example
        assert case.shown.tokens == window.tokens[case.shown.start:][: WIDTH - WIDTH // 4]
        active = set(active_positions(window, THRESHOLD))
        in_window = {case.shown.start + m for m in case.marks}
        assert case.marks and (in_window <= active if case.label else not in_window & active)
    # the wrong marks are the true ones of some crop, moved by one shift d (same runs, same gaps)
    rng, length = np.random.default_rng(3), WIDTH - WIDTH // 4
    for e in item.activating:
        active = set(active_positions(e.example, THRESHOLD))
        _, (wrong, marks) = marked_pair(e.example, rng, THRESHOLD)
        moved = {wrong.start + m for m in marks}
        assert any(
            {p - d for p in moved} == {a for a in active if wrong.start - d <= a < wrong.start - d + length}
            for d in range(-WIDTH // 4, WIDTH // 4 + 1) if d
        )


def test_mark_layouts_are_equally_likely_in_both_classes():
    """Over many draws of one window, the marked positions shown have the same distribution in both copies."""
    window = synthetic_items("x", n_latents=1, per_class=1)[0].activating[0].example
    counts = {1: {}, 0: {}}
    for seed in range(4000):
        (_, right), (_, wrong) = marked_pair(window, np.random.default_rng(seed), THRESHOLD)
        for label, marks in ((1, right), (0, wrong)):
            counts[label][marks] = counts[label].get(marks, 0) + 1
    assert counts[1].keys() == counts[0].keys()
    for layout, n in counts[1].items():
        assert abs(n - counts[0][layout]) < 4 * np.sqrt(n) + 5


def test_windows_that_cannot_be_mis_marked_are_left_out():
    tokens = tuple(f" w{k}" for k in range(8))
    dense = Example(tokens, (1.0,) * 8, (10,) * 8, ACTIVATING, 0, 0)
    silent = Example(tokens, (0.0,) * 8, (0,) * 8, ACTIVATING, 0, 0)
    assert marked_pair(dense, np.random.default_rng(0), THRESHOLD) is None
    assert marked_pair(silent, np.random.default_rng(0), THRESHOLD) is None
    usable = synthetic_window(np.random.default_rng(1), True)
    cases = fuzz_cases([ScoringExample(e, "test", i) for i, e in enumerate([dense, usable, silent])],
                       np.random.default_rng(0), THRESHOLD)
    assert [c.source.idx for c in cases] == [1, 1]


@pytest.mark.parametrize("mode", ["batched", "per_example"])
def test_fuzzing_prompts_hold_each_window_once(store, mode):
    [item] = synthetic_items("knows_concept", n_latents=1, per_class=10)
    with StubLLMServer(reply=reply if mode == "batched" else "Yes") as server:
        [score] = score_latents(stub_client(server, store), "fuzzing", [item], ScorerConfig(mode=mode))
    assert sorted((j.example_idx, j.label) for j in score.judgments) == sorted(
        [(i, 1) for i in range(10)] + [(i, 0) for i in range(10)])
    for request in server.requests:
        texts = [" ".join(w for w, _ in words) for words in shown_words(request.messages)]
        assert len(texts) == len(set(texts))
