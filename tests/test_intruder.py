"""Intruder detection: the tasks a latent gets, how answers are read, and the scores against the scripted judge
on a real HTTP server (it names the window on the other side of its LORD/God rule from the rest)."""

from __future__ import annotations

import pytest

from autointerp_dagster.core.llm import LLMClient, OpenAIBackend
from autointerp_dagster.core.prompts import ParseError
from autointerp_dagster.core.prompts.intruder import build_intruder_messages, parse_intruder
from autointerp_dagster.core.sampling import Example
from autointerp_dagster.core.scorers.intruder import MIXED, OWN, intruder_tasks, score_intruders

DIVINE = 7  # this latent's windows all mention the LORD; the other latents' never do


def window(latent: int, i: int) -> Example:
    words = ("the", " LORD", " said") if latent == DIVINE else ("a", f" word{latent}", f" x{i}")
    return Example(tokens=words, activations=(0.0, 1.0, 0.0), normalized=(0, 10, 0), kind="activating",
                   row=latent * 100 + i, start=0)


WINDOWS = {latent: [window(latent, i) for i in range(6)] for latent in (1, 2, 3, 4, 5, 6, DIVINE)}


def test_tasks_hold_the_latents_windows_and_one_intruder_and_the_control_holds_distinct_latents():
    tasks = intruder_tasks(WINDOWS, [DIVINE, 2], shown=4, tasks=5, seed=3)
    assert tasks == intruder_tasks(WINDOWS, [DIVINE, 2], shown=4, tasks=5, seed=3)  # seeded
    assert tasks != intruder_tasks(WINDOWS, [DIVINE, 2], shown=4, tasks=5, seed=4)
    for task in tasks:
        assert len(task.windows) == len(task.sources) == 5
        for example, source in zip(task.windows, task.sources):
            assert example in WINDOWS[source]
        if task.control == OWN:
            assert [i for i, s in enumerate(task.sources) if s != task.latent] == [task.intruder]
            assert len({(w.row, w.start) for w in task.windows}) == 5  # the latent's windows drawn without repeats
        else:
            assert len(set(task.sources)) == 5 and task.latent in task.sources
    assert sorted((t.latent, t.control) for t in tasks).count((DIVINE, OWN)) == 5
    assert sorted((t.latent, t.control) for t in tasks).count((2, MIXED)) == 5
    # Too few windows of its own, or too few other latents: no tasks of that kind.
    few = {**WINDOWS, 9: WINDOWS[1][:2]}
    assert [t.control for t in intruder_tasks(few, [9], shown=4, tasks=3, seed=0)] == [MIXED] * 3
    assert [t.control for t in intruder_tasks({1: WINDOWS[1], 2: WINDOWS[2]}, [1], shown=4, tasks=3, seed=0)] == \
        [OWN] * 3


def test_answers_name_a_window_by_number():
    assert parse_intruder("Intruder: 3", 5) == 2
    assert parse_intruder("The odd one is window 4.\nIntruder: 1", 5) == 0
    assert parse_intruder("2", 5) == 1
    with pytest.raises(ParseError):
        parse_intruder("Intruder: 9", 5)
    with pytest.raises(ParseError):
        parse_intruder("I cannot tell", 5)
    with pytest.raises(ValueError):
        build_intruder_messages([("a",), ("b",)])


def test_the_judge_finds_a_coherent_latents_intruder_and_the_control_stays_at_its_draws(llm_server, store):
    client = LLMClient(OpenAIBackend(llm_server.base_url, "scripted-judge", max_retries=3, backoff_base_s=0.01),
                       store, concurrency=4)
    tasks = intruder_tasks(WINDOWS, [DIVINE, 2], shown=4, tasks=6, seed=1)
    scores = {(s.latent, s.control): s for s in score_intruders(client, tasks, [DIVINE, 2, 99], max_tokens=8)}
    own = scores[(DIVINE, OWN)]
    assert own.status == "ok" and own.answered == 6 and own.accuracy == 1.0 and own.chance == pytest.approx(0.2)
    assert 0.5 < own.ci_low < 1.0 == own.ci_high  # Wilson interval over 6 tasks
    # In a control task the judge names DIVINE's window (the one mentioning the LORD): right only where the
    # drawn "intruder" position happens to be that window's.
    control = scores[(DIVINE, MIXED)]
    expected = [t.sources[t.intruder] == DIVINE for t in tasks if (t.latent, t.control) == (DIVINE, MIXED)]
    assert control.answered == 6 and control.accuracy == pytest.approx(sum(expected) / 6)
    # Latent 2's windows share no LORD: the judge finds an intruder of DIVINE's, and otherwise names window 1.
    plain = scores[(2, OWN)]
    found = [t.sources[t.intruder] == DIVINE or (DIVINE not in t.sources and t.intruder == 0)
             for t in tasks if (t.latent, t.control) == (2, OWN)]
    assert plain.accuracy == pytest.approx(sum(found) / 6)
    missing = scores[(99, OWN)]
    assert missing.status == "failed" and "too few activating windows" in missing.error
    assert len(own.call_ids) == 6 and own.prompt_tokens > 0
