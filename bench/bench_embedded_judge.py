"""How well the embedded 1.5B judge ranks matching texts above non-matching ones, on this machine's CPU.

Three easy concepts on King James verses (the set the offline-assets notes used), 10 positives and 10
negatives each, one verse a prompt; P(yes) from the first token's logprobs. Prints the AUC per concept
and the mean margin P(yes | match) - P(yes | no match). Kept out of tests/: int8 kernels differ between
AVX2 and AVX-512 machines, and so do a small model's probabilities.

    .venv/bin/python bench/bench_embedded_judge.py [--models-dir .autointerp/models] [--engine ctranslate2|torch]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autointerp_dagster.core.config import load_settings  # noqa: E402
from autointerp_dagster.core.llm import ChatRequest, CT2Backend, LocalBackend  # noqa: E402
from autointerp_dagster.core.llm.factory import local_engine  # noqa: E402
from autointerp_dagster.core.models.embedded import kjv_documents  # noqa: E402
from autointerp_dagster.core.prompts.judge import build_detection_single_messages, yes_probability  # noqa: E402
from autointerp_dagster.core.reporting.metrics import roc_auc  # noqa: E402
from autointerp_dagster.core.sampling import ACTIVATING, RANDOM_NEGATIVE, Example  # noqa: E402

CONCEPTS = {
    "the word LORD, referring to God": lambda v: " LORD " in f" {v} ",
    "water, rivers, seas or rain": lambda v: any(w in v.lower() for w in ("water", "river", "sea ", "rain")),
    "numbers written as words": lambda v: any(w in v.lower().split() for w in (
        "two", "three", "four", "five", "six", "seven", "ten", "twenty", "hundred", "thousand")),
}


def verses(n: int) -> list[str]:
    """Sentences of the first chapters, short enough for one quick prompt each."""
    found = []
    for chapter in kjv_documents():
        found += [v.strip() for v in re.split(r"(?<=[.?!])\s+", chapter) if 40 < len(v.strip()) < 140]
        if len(found) > n:
            break
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    settings = load_settings()
    parser.add_argument("--models-dir", default=str(settings.models_dir))
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--engine", choices=["torch", "ctranslate2"], default=local_engine(settings.llm),
                        help="default: the one llm.engine picks")
    args = parser.parse_args()
    engine = CT2Backend if args.engine == "ctranslate2" else LocalBackend
    judge = engine("embedded:qwen2.5-coder-1.5b-instruct", args.models_dir)
    print(f"engine: {args.engine}")
    pool = verses(4000)
    aucs, margins, started, calls = [], [], time.monotonic(), 0
    for concept, matches in CONCEPTS.items():
        positives = [v for v in pool if matches(v)][: args.per_class]
        negatives = [v for v in pool if not any(m(v) for m in CONCEPTS.values())][: args.per_class]
        labels, scores = [], []
        for text, label in [(t, 1) for t in positives] + [(t, 0) for t in negatives]:
            tokens = tuple(f" {w}" for w in text.split())
            shown = Example(tokens, (0.0,) * len(tokens), (0,) * len(tokens),
                            ACTIVATING if label else RANDOM_NEGATIVE, 0, 0)
            reply = judge.generate(ChatRequest(build_detection_single_messages(concept, shown), max_tokens=1,
                                               logprobs=True, top_logprobs=10))
            labels.append(label)
            scores.append(yes_probability(reply.top_logprobs[0]) or 0.0)
            calls += 1
        auc = roc_auc(labels, scores)
        margin = sum(s for s, y in zip(scores, labels) if y) / sum(labels) - sum(
            s for s, y in zip(scores, labels) if not y) / (len(labels) - sum(labels))
        aucs.append(auc)
        margins.append(margin)
        print(f"{concept!r}: AUC {auc:.3f}, margin {margin:+.3f}")
    print(f"judge_auc_mean={sum(aucs) / len(aucs):.3f}")
    print(f"judge_margin_mean={sum(margins) / len(margins):.3f}")
    print(f"judge_seconds_per_judgment={(time.monotonic() - started) / calls:.2f}")


if __name__ == "__main__":
    main()
