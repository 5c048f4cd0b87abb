"""Prompt construction and the parsers for explainer and judge answers."""

from __future__ import annotations

import math
import re

import pytest

from autointerp_dagster.core.prompts import ParseError, render_tokens
from autointerp_dagster.core.prompts.explainer import (
    INACTIVE_HEADER,
    build_explainer_messages,
    explanation_retry_message,
    format_example_for_explainer,
    parse_explanation,
)
from autointerp_dagster.core.prompts.judge import (
    build_detection_messages,
    build_detection_single_messages,
    build_fuzzing_messages,
    build_fuzzing_single_messages,
    list_probabilities,
    parse_binary_list,
    parse_yes_no,
    yes_probability,
)
from autointerp_dagster.core.sampling import ACTIVATING, HARD_NEGATIVE, Example


def make_example(tokens, activations, kind=ACTIVATING):
    peak = max(max(activations), 1e-9)
    return Example(
        tokens=tuple(tokens),
        activations=tuple(float(a) for a in activations),
        normalized=tuple(math.ceil(10 * a / peak) for a in activations),
        kind=kind,
        row=0,
        start=0,
    )


CAT = make_example(["The", " cat", " sat", " on", " the", " mat", "."], [0, 2, 1.5, 0, 0.5, 4, 0])
SILENT = make_example(["A", " dog", " ran", " home"], [0, 0, 0, 0], kind=HARD_NEGATIVE)


# --- highlighting -----------------------------------------------------------


def test_adjacent_highlighted_tokens_merge_into_one_span():
    # threshold 0.3 * 4 = 1.2: " cat" (2) and " sat" (1.5) are adjacent; " the" (0.5) is not marked.
    text = format_example_for_explainer(CAT, show_activations=False)
    assert text == "The <<cat sat>> on the <<mat>>."


def test_highlight_threshold_is_relative_to_example_max():
    assert format_example_for_explainer(CAT, 0.1, False) == "The <<cat sat>> on <<the mat>>."
    assert format_example_for_explainer(CAT, 0.6, False) == "The cat sat on the <<mat>>."
    assert format_example_for_explainer(CAT, 0.45, False) == "The <<cat>> sat on the <<mat>>."
    # Strict "greater than": " cat" sits exactly at 0.5 * 4 and stays unmarked.
    assert format_example_for_explainer(CAT, 0.5, False) == "The cat sat on the <<mat>>."


def test_activations_line_lists_highlighted_tokens_with_normalized_values():
    text = format_example_for_explainer(CAT)
    lines = text.split("\n")
    assert len(lines) == 2
    assert lines[1] == 'Activations: ("cat" : 5), ("sat" : 4), ("mat" : 10)'


def test_no_activations_line_for_silent_example_or_when_disabled():
    assert "Activations" not in format_example_for_explainer(SILENT)
    assert format_example_for_explainer(SILENT) == "A dog ran home"
    assert "Activations" not in format_example_for_explainer(CAT, show_activations=False)


def test_render_tokens_escapes_newlines_and_keeps_whitespace_outside_markers():
    assert render_tokens(["a", "\n", "b", " c "], {1}) == "a<<\\n>>b c "
    assert render_tokens(["x", " y ", "z"], {1}) == "x <<y>> z"
    assert render_tokens(["x", " ", "z"], {1}) == "x<< >>z"
    assert render_tokens(["x", "y"], ()) == "xy"


# --- explainer messages -----------------------------------------------------


def test_explainer_messages_structure_and_numbering():
    examples = [CAT, CAT, CAT]
    messages = build_explainer_messages(examples)
    assert messages[0]["role"] == "system"
    assert "[EXPLANATION]:" in messages[0]["content"]
    roles = [m["role"] for m in messages[1:-1]]
    assert roles == ["user", "assistant"] * 3
    for answer in messages[2:-1:2]:
        assert parse_explanation(answer["content"])  # few-shot answers follow the format
    last = messages[-1]
    assert last["role"] == "user"
    for i in (1, 2, 3):
        assert f"Example {i}: The <<cat sat>>" in last["content"]
    assert "Example 4" not in last["content"]
    assert last["content"].count("Activations:") == 3


def test_explainer_without_few_shot_or_activations():
    messages = build_explainer_messages([CAT], few_shot=False, show_activations=False)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "0 to 10" not in messages[0]["content"]
    assert "Activations:" not in messages[1]["content"]
    with_few_shot = build_explainer_messages([CAT], show_activations=False)
    assert all("Activations:" not in m["content"] for m in with_few_shot)


def test_contrastive_section_only_with_hard_negatives():
    plain = build_explainer_messages([CAT])
    assert all(INACTIVE_HEADER not in m["content"] for m in plain)
    assert all("NOT active" not in m["content"] for m in plain)
    assert build_explainer_messages([CAT], hard_negatives=[]) == plain

    contrastive = build_explainer_messages([CAT, CAT], hard_negatives=[SILENT])
    assert "tell the two apart" in contrastive[0]["content"]
    last = contrastive[-1]["content"]
    active_part, inactive_part = last.split(INACTIVE_HEADER)
    assert "Example 3: A dog ran home" in inactive_part
    assert "dog" not in active_part
    # the few-shot demonstrates the contrast too
    assert any(INACTIVE_HEADER in m["content"] for m in contrastive[1:-1])


def test_explainer_rejects_no_examples():
    with pytest.raises(ValueError):
        build_explainer_messages([])


# --- parse_explanation -------------------------------------------------------


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("The tokens are units.\n[EXPLANATION]: units of measurement", "units of measurement"),
        ("[explanation]: plural nouns", "plural nouns"),
        ("[EXPLANATION] plural nouns", "plural nouns"),
        ("[ EXPLANATION ] :   plural nouns  ", "plural nouns"),
        ("**[EXPLANATION]:** the word \"bank\"", 'the word "bank"'),
        ("**[EXPLANATION]: closing brackets in code**", "closing brackets in code"),
        ('[EXPLANATION]: "years in dates"', "years in dates"),
        ("[EXPLANATION]: \u201cyears in dates\u201d", "years in dates"),
        ("[EXPLANATION]: *verbs of motion*", "verbs of motion"),
        ("[EXPLANATION]:\n\nverbs of motion\n\nI hope this helps.", "verbs of motion"),
        ("[EXPLANATION]: past-tense verbs\nThis fits all examples.", "past-tense verbs"),
        (
            "First guess [EXPLANATION]: nouns\nOn reflection:\n[EXPLANATION]: proper nouns",
            "proper nouns",
        ),
        (  # chain of thought: the steps may name the marker; the final line is the answer
            "Step 1. Marked: \"Nile\", \"Rhine\".\nStep 3. Fits all; now the [EXPLANATION]: line.\n"
            "[EXPLANATION]: names of rivers",
            "names of rivers",
        ),
        ("[EXPLANATION]: the `def` keyword", "the `def` keyword"),
        ("[EXPLANATION]: 'bank' and 'money'", "'bank' and 'money'"),
        ("[EXPLANATION]: numbers in lists<end_of_turn>", "numbers in lists"),
        ("Reasoning...\n**Explanation:** names of rivers", "names of rivers"),
        ("Explanation: names of rivers", "names of rivers"),
        ("[EXPLANATION]: - a bullet answer", "a bullet answer"),
    ],
)
def test_parse_explanation_messy_answers(answer, expected):
    assert parse_explanation(answer) == expected


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "These examples are all about cooking.",
        "My explanation would be about cooking.",  # 'explanation' mid-sentence is not a marker
        "[EXPLANATION]:",
        "[EXPLANATION]:   \n\n  ",
        "[EXPLANATION]: **\"\"**",
        "[EXPLANATION]: <your explanation>",
        "[EXPLANATION]: ...",
    ],
)
def test_parse_explanation_failures_raise(answer):
    with pytest.raises(ParseError):
        parse_explanation(answer)


def test_parse_error_is_value_error():
    assert issubclass(ParseError, ValueError)


def test_retry_message_asks_for_the_marker_line():
    msg = explanation_retry_message()
    assert msg["role"] == "user"
    assert msg["content"].rstrip().splitlines()[-1].startswith("[EXPLANATION]:")


# --- judge messages ----------------------------------------------------------


def test_detection_messages_show_plain_numbered_examples_after_worked_turns():
    messages = build_detection_messages("animals", [CAT, SILENT])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    user = messages[-1]["content"]
    assert "Explanation: animals" in user
    assert "Example 1: The cat sat on the mat." in user
    assert "Example 2: A dog ran home" in user
    assert "<<" not in user
    assert "exactly 2 values" in user
    with pytest.raises(ValueError):
        build_detection_messages("animals", [])


def test_worked_turns_answer_their_own_examples_in_the_list_format():
    for messages in (build_detection_messages("animals", [CAT]),
                     build_fuzzing_messages("animals", [CAT], [(1,)])):
        for question, answer in zip(messages[1:-1:2], messages[2:-1:2]):
            shown = re.findall(r"^Example \d+: ", question["content"], re.MULTILINE)
            values = parse_binary_list(answer["content"], len(shown))
            assert 0 < sum(values) < len(values)  # both answers shown in each turn
            assert f"exactly {len(shown)} values" in question["content"]


def test_worked_fuzzing_turns_mark_one_run_in_every_example():
    """Wrong marks in the worked turns are runs like the right ones, so they teach no shape cue."""
    messages = build_fuzzing_messages("animals", [CAT], [(1,)])
    for question in messages[1:-1:2]:
        for line in re.findall(r"^Example \d+: (.*)$", question["content"], re.MULTILINE):
            assert line.count("<<") == 1


def test_fuzzing_messages_mark_given_positions_and_word_the_task_neutrally():
    messages = build_fuzzing_messages("animals", [CAT, SILENT], [(1,), (0, 3)])
    user = messages[-1]["content"]
    assert "Example 1: The <<cat>> sat on the mat." in user
    assert "Example 2: <<A>> dog ran <<home>>" in user
    system = messages[0]["content"]
    assert "<<like this>>" in system
    # nothing tells the judge how wrong marks were placed (an earlier prompt said "at random")
    assert not re.search(r"random|position|contiguous|single|scattered", system, re.IGNORECASE)
    with pytest.raises(ValueError):
        build_fuzzing_messages("animals", [CAT, SILENT], [(1,)])


def test_single_messages_ask_yes_no_after_one_worked_yes_and_one_no():
    det = build_detection_single_messages("animals", CAT)
    fuzz = build_fuzzing_single_messages("animals", CAT, (5,))
    for messages in (det, fuzz):
        assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
        assert [messages[2]["content"], messages[4]["content"]] == ["Yes", "No"]
        assert all(m["content"].endswith("Answer Yes or No.") for m in messages[1::2])
        assert "Explanation: animals" in messages[-1]["content"]
    assert "Text: The cat sat on the mat." in det[-1]["content"]
    assert "Text: The cat sat on the <<mat>>." in fuzz[-1]["content"]


# --- parse_binary_list -------------------------------------------------------


@pytest.mark.parametrize(
    "answer, n, expected",
    [
        ("[1, 0, 1]", 3, [1, 0, 1]),
        ("[1,0,1,]", 3, [1, 0, 1]),
        ("  [ 1 ,0 , 1 ]  ", 3, [1, 0, 1]),
        ("```json\n[0, 1, 1, 0]\n```", 4, [0, 1, 1, 0]),
        ("[true, false, True]", 3, [1, 0, 1]),
        ('["yes", "no"]', 2, [1, 0]),
        ("Example 1 matches [see above]. Final: [0, 0, 1]", 3, [0, 0, 1]),
        ("Draft [1, 1, 1] but corrected: [1, 0, 1]", 3, [1, 0, 1]),
        ("[1 0 1 1]", 4, [1, 0, 1, 1]),
        ("[[1, 0]]", 2, [1, 0]),
        ("[1.0, 0.0]", 2, [1, 0]),
    ],
)
def test_parse_binary_list_messy(answer, n, expected):
    assert parse_binary_list(answer, n) == expected


@pytest.mark.parametrize(
    "answer, n",
    [
        ("[1, 0]", 3),  # too short
        ("[1, 0, 1, 1]", 3),  # too long
        ("[1, 0, 1] then [1, 0]", 3),  # the last list decides
        ("1, 0, 1", 3),  # no brackets
        ("[1, 2, 0]", 3),  # not binary
        ("[]", 0),
        ("I cannot tell.", 2),
    ],
)
def test_parse_binary_list_failures(answer, n):
    with pytest.raises(ParseError):
        parse_binary_list(answer, n)


# --- list_probabilities -----------------------------------------------------


def tokens_with(text_tokens: list[str], answers: dict[int, dict[str, float]]) -> list[dict[str, float]]:
    """Per-token alternatives: the chosen token alone (logprob 0) unless `answers` gives probabilities."""
    return [
        {t: math.log(p) for t, p in answers[i].items()} if i in answers else {token: 0.0}
        for i, token in enumerate(text_tokens)
    ]


def test_list_probabilities_read_p1_at_each_value():
    tokens = ["[", "1", ",", " 0", ",", " 1", "]"]
    logprobs = tokens_with(tokens, {1: {"1": 0.8, "0": 0.2}, 3: {" 0": 0.7, " 1": 0.3, "0": 0.1},
                                    5: {" 1": 0.3, " 0": 0.2, " maybe": 0.5}})
    # " 0" and "0" both count for 0
    assert list_probabilities("".join(tokens), logprobs, 3) == pytest.approx([0.8, 0.3 / 1.1, 0.6])


def test_list_probabilities_after_reasoning_with_digits_and_a_draft_list():
    """Text before the list (a model that reasons first) parses, and its own digits and lists are skipped."""
    tokens = ["Example", " 1", " fits", ";", " draft", " [", "1", ",", " 1", "].", " Final", ":", " [",
              "0", ",", " 1", "]", "<|eot_id|>"]
    text = "".join(tokens[:-1])  # the end-of-turn token is not part of the text
    logprobs = tokens_with(tokens, {13: {"0": 0.9, "1": 0.1}, 15: {" 1": 0.75, " 0": 0.25}})
    assert parse_binary_list(text, 2) == [0, 1]
    assert list_probabilities(text, logprobs, 2) == pytest.approx([0.1, 0.75])


def test_list_probabilities_with_merged_tokens_and_word_answers():
    tokens = ["Answer", ":", " [1,", " 0]"]
    logprobs = tokens_with(tokens, {2: {" [1,": 0.6, " [0,": 0.4}, 3: {" 0]": 0.5, " 1]": 0.5}})
    assert list_probabilities("".join(tokens), logprobs, 2) == pytest.approx([0.6, 0.5])
    tokens = ["[", "true", ",", " false", "]"]
    logprobs = tokens_with(tokens, {1: {"true": 0.9, "false": 0.1}, 3: {" false": 0.8, " true": 0.2}})
    assert list_probabilities("".join(tokens), logprobs, 2) == pytest.approx([0.9, 0.2])


@pytest.mark.parametrize(
    "tokens, n",
    [
        (["[", "1", ",", " 0", "]"], 3),  # wrong length
        (["[", "1,0", "]"], 2),  # two values in one token
        (["I", " cannot", " tell"], 1),  # no list
    ],
)
def test_list_probabilities_none_when_unreadable(tokens, n):
    assert list_probabilities("".join(tokens), tokens_with(tokens, {}), n) is None


def test_list_probabilities_none_when_logprobs_do_not_match_the_text():
    tokens = ["[", "1", ",", " 0", "]"]
    assert list_probabilities("[1, 1]", tokens_with(tokens, {}), 2) is None
    assert list_probabilities("[1, 0]", None, 2) is None
    assert list_probabilities("[1, 0]", [], 2) is None


# --- yes/no ------------------------------------------------------------------


def test_yes_probability_normalises_over_yes_and_no_variants():
    lp = {"Yes": math.log(0.5), " yes": math.log(0.1), "No": math.log(0.2), "Maybe": math.log(0.2)}
    assert yes_probability(lp) == pytest.approx(0.6 / 0.8)
    assert yes_probability({"YES": math.log(0.3), "\u2581No": math.log(0.1)}) == pytest.approx(0.75)
    assert yes_probability({" no": -0.1}) == pytest.approx(0.0)
    assert yes_probability({"yes.": -2.0}) == pytest.approx(1.0)


def test_yes_probability_none_without_answer_tokens():
    assert yes_probability({}) is None
    assert yes_probability({"Maybe": -0.1, "The": -1.0, "Note": -2.0, "Yesterday": -3.0}) is None
    assert yes_probability({"Yes": float("-inf"), "No": float("-inf")}) is None


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("Yes", 1),
        (" no", 0),
        ("YES.", 1),
        ("**No**", 0),
        ("No, the text is about dogs, yes.", 0),
        ("Answer: Yes", 1),
        ("I think the answer is no.", 0),
    ],
)
def test_parse_yes_no(answer, expected):
    assert parse_yes_no(answer) == expected


@pytest.mark.parametrize("answer", ["", "Maybe", "Nothing here", "It could be yes or no"])
def test_parse_yes_no_failures(answer):
    with pytest.raises(ParseError):
        parse_yes_no(answer)


def test_default_prompt_asks_for_the_answer_line_alone():
    messages = build_explainer_messages([CAT])
    assert "Answer with one line only" in messages[0]["content"] and "step by step" not in messages[0]["content"]
    for answer in messages[2:-1:2]:  # the few-shot answers show no reasoning either
        assert answer["content"].startswith("[EXPLANATION]: ") and "\n" not in answer["content"]


@pytest.mark.parametrize("contrastive", [False, True])
def test_chain_of_thought_prompt_asks_for_steps_then_the_answer_line(contrastive):
    negatives = [SILENT] if contrastive else None
    plain = build_explainer_messages([CAT], hard_negatives=negatives)
    messages = build_explainer_messages([CAT], hard_negatives=negatives, reasoning=True)
    system = messages[0]["content"]
    assert "step by step" in system and "Step 3." in system and system.endswith("[EXPLANATION]: <your explanation>")
    assert ("NOT active" in system.split("step by step")[1]) == contrastive
    for answer, direct in zip(messages[2:-1:2], plain[2:-1:2]):
        lines = answer["content"].split("\n")
        assert [line[:7] for line in lines[:3]] == ["Step 1.", "Step 2.", "Step 3."]
        assert lines[-1] == direct["content"] and parse_explanation(answer["content"]) == parse_explanation(lines[-1])
    assert ("inactive examples" in messages[-2]["content"]) == contrastive
    assert messages[-1] == plain[-1]


def test_prefilled_prompt_shows_no_answer_template_and_starts_the_answer():
    examples = [make_example(["the", " river", " ran"], [0, 5, 0])]
    messages = build_explainer_messages(examples, reasoning=False, few_shot=False, show_activations=False,
                                        prefill=True)
    assert [m["role"] for m in messages] == ["system", "user", "assistant"]
    assert messages[-1]["content"] == "[EXPLANATION]: The marked words are"
    assert "[EXPLANATION]" not in messages[0]["content"] + messages[1]["content"]
    assert messages[1]["content"].endswith("What do the marked words have in common?")
    assert "the <<river>> ran" in messages[1]["content"]
    with pytest.raises(ValueError, match="reasoning"):
        build_explainer_messages(examples, prefill=True, reasoning=True)
