"""The two in-process LLM engines side by side on the embedded 1.5B judge: torch dynamic int8 and CTranslate2 int8.

Each engine runs in its own process (clean timings and peak memory), on the same requests:
- prompt: one 512-token prompt, one-token answer: prompt tokens/s;
- judgments: the project's per-example detection prompts (core/prompts/judge.py), 10 verses naming the
  LORD and 10 others under one explanation, sharing their prefix: judgments/s, and P(yes) of each;
- generation: a short prompt asking for a long answer, 32 tokens: generated tokens/s (prompt included).
Agreement: P(yes) differences between engines, and how often they give the same answer (Yes/No).
Batching (CTranslate2): the same judgments, whole prompts of different lengths, in batches of 8 against one
at a time: seconds a judgment and the largest P(yes) difference (why the engine serves one at a time).

CPU kinds: `native` is this machine; `avx2` caps every library at AVX2 in the child processes (torch's
ATen and FBGEMM, oneDNN, MKL, CTranslate2), which emulates an AVX2-only Intel machine; `avx2-nomkl`
also turns MKL off in CTranslate2, its default on AMD CPUs. The conversion to CTranslate2 happens once
(cached under models_dir/ct2/) before the runs and is not timed here.

    .venv/bin/python bench/bench_llm_engines.py [--kinds native,avx2,avx2-nomkl] [--models-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autointerp_dagster.core.config import load_settings  # noqa: E402
from autointerp_dagster.core.llm import ChatRequest, CT2Backend, LocalBackend  # noqa: E402
from autointerp_dagster.core.models.embedded import kjv_documents  # noqa: E402
from autointerp_dagster.core.prompts.judge import build_detection_single_messages, yes_probability  # noqa: E402
from autointerp_dagster.core.sampling import ACTIVATING, RANDOM_NEGATIVE, Example  # noqa: E402

JUDGE = "embedded:qwen2.5-coder-1.5b-instruct"
EXPLANATION = "the word LORD, referring to God"
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2",
        "DNNL_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "CT2_FORCE_CPU_ISA": "AVX2"}
KINDS = {"native": {}, "avx2": AVX2, "avx2-nomkl": {**AVX2, "CT2_USE_MKL": "0"}}
ENGINES = {"torch": LocalBackend, "ctranslate2": CT2Backend}


def verses(per_class: int) -> list[tuple[str, int]]:
    """(verse, 1 if it names the LORD) for the first short verses of each class."""
    found: dict[int, list[str]] = {0: [], 1: []}
    for chapter in kjv_documents():
        for verse in re.split(r"(?<=[.?!])\s+", chapter):
            verse = verse.strip()
            label = int(" LORD " in f" {verse} ")
            if 40 < len(verse) < 140 and len(found[label]) < per_class:
                found[label].append(verse)
        if min(len(v) for v in found.values()) >= per_class:
            break
    return [(v, 1) for v in found[1]] + [(v, 0) for v in found[0]]


def judgment(text: str, label: int) -> ChatRequest:
    tokens = tuple(f" {w}" for w in text.split())
    example = Example(tokens, (0.0,) * len(tokens), (0,) * len(tokens), ACTIVATING if label else RANDOM_NEGATIVE, 0, 0)
    return ChatRequest(build_detection_single_messages(EXPLANATION, example), max_tokens=1, logprobs=True,
                       top_logprobs=10)


def long_prompt(backend, n_tokens: int) -> ChatRequest:
    """One user message of Bible text, cut so the templated prompt holds `n_tokens` tokens."""
    text = " ".join(doc for _, doc in zip(range(5), kjv_documents()))
    ids = backend._tokenizer(text, add_special_tokens=False)["input_ids"]
    overhead = len(backend._tokenizer.apply_chat_template([{"role": "user", "content": ""}], tokenize=True,
                                                          add_generation_prompt=True))
    return ChatRequest([{"role": "user", "content": backend._tokenizer.decode(ids[: n_tokens - overhead])}],
                       max_tokens=1)


def timed(backend, request: ChatRequest):
    started = time.perf_counter()
    reply = backend.generate(request)
    return reply, time.perf_counter() - started


def worker(engine: str, models_dir: str, per_class: int, prompt_tokens: int, repeats: int) -> dict:
    """One engine's figures, in this process."""
    started = time.perf_counter()
    backend = ENGINES[engine](JUDGE, models_dir, device="cpu")
    backend.generate(ChatRequest([{"role": "user", "content": "Hi"}], max_tokens=1))  # loads the model
    load_s = time.perf_counter() - started
    prompt = long_prompt(backend, prompt_tokens)
    prompt_runs = [timed(backend, prompt) for _ in range(repeats)]
    best = min(seconds for _, seconds in prompt_runs)
    judged, started = [], time.perf_counter()
    for text, label in verses(per_class):
        reply = backend.generate(judgment(text, label))
        judged.append({"label": label, "p_yes": yes_probability(reply.top_logprobs[0]), "answer": reply.text.strip(),
                       "tokens_in": reply.tokens_in})
    judge_s = time.perf_counter() - started
    batched = batched_judgments(backend, per_class) if engine == "ctranslate2" else {}
    story = ChatRequest([{"role": "user", "content": "Tell a long story about a river and the people along it."}],
                        max_tokens=32)
    generated, gen_s = timed(backend, story)
    return {"engine": engine, "load_s": load_s, "prompt_tokens": prompt_runs[0][0].tokens_in,
            "prompt_tokens_per_s": prompt_runs[0][0].tokens_in / best, "judgments": len(judged),
            "judgments_per_s": len(judged) / judge_s, "judged": judged,
            "generation_tokens_per_s": generated.tokens_out / gen_s, "generated_tokens": generated.tokens_out,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, **batched}


def batched_judgments(backend, per_class: int, size: int = 8) -> dict:
    """Why the engine serves one request at a time: the same judgments in CTranslate2 batches of `size`
    (prompts of different lengths, whole prompts) against one at a time (whole prompts too): P(yes)
    differences and seconds a judgment."""
    from autointerp_dagster.core.llm.chat_tokens import prompt_ids, top_logprobs

    tokens = [backend._tokenizer.convert_ids_to_tokens(prompt_ids(backend._tokenizer, judgment(text, label)))
              for text, label in verses(per_class)]
    options = {"max_length": 1, "include_prompt_in_result": False, "return_logits_vocab": True}

    def p_yes(result) -> float:  # 0 when neither Yes nor No is among the 200 likeliest tokens
        row = torch.log_softmax(torch.from_numpy(np.asarray(result.logits[0][0])).float().reshape(-1), dim=-1)
        [top] = top_logprobs(backend._tokenizer, [row], [int(row.argmax())], 200)
        return yes_probability(top) or 0.0

    started = time.perf_counter()
    single = [p_yes(backend._generator.generate_batch([t], **options)[0]) for t in tokens]
    single_s = (time.perf_counter() - started) / len(tokens)
    started = time.perf_counter()
    batched = [p_yes(r) for i in range(0, len(tokens), size)
               for r in backend._generator.generate_batch(tokens[i:i + size], **options)]
    batched_s = (time.perf_counter() - started) / len(tokens)
    return {"batch_p_yes_abs_diff_max": max(abs(a - b) for a, b in zip(single, batched)),
            "batch_seconds_per_judgment": batched_s, "single_seconds_per_judgment": single_s}


def run_kind(kind: str, engine: str, args) -> dict:
    env = {**os.environ, **KINDS[kind], "CT2_VERBOSE": "1"}
    done = subprocess.run([sys.executable, __file__, "--worker", engine, "--models-dir", args.models_dir,
                           "--per-class", str(args.per_class), "--prompt-tokens", str(args.prompt_tokens),
                           "--repeats", str(args.repeats)], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{kind} {engine} failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    isa = re.search(r"Selected ISA: (\S+)", done.stderr)
    gemm = re.search(r"GEMM_S8 backend: (\S+)", done.stderr)
    figures["ct2_isa"] = f"{isa.group(1)}/{gemm.group(1)}" if isa and gemm else "-"
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", default=str(load_settings().models_dir))
    parser.add_argument("--kinds", default="native,avx2,avx2-nomkl")
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=2, help="runs of the long prompt; the fastest counts")
    parser.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.models_dir, args.per_class, args.prompt_tokens, args.repeats)))
        return
    CT2Backend(JUDGE, args.models_dir, device="cpu").generate(  # converts once, outside the timings
        ChatRequest([{"role": "user", "content": "Hi"}], max_tokens=1))
    lines = []
    for kind in args.kinds.split(","):
        engines = ["ctranslate2"] if kind == "avx2-nomkl" else ["torch", "ctranslate2"]
        runs = {engine: run_kind(kind, engine, args) for engine in engines}
        print(f"\n{kind}: {'engine':12} {'load s':>7} {'prompt tok/s':>13} {'judgments/s':>12} {'gen tok/s':>10} "
              f"{'peak GB':>8}  ct2 ISA/int8 GEMM")
        for engine, r in runs.items():
            print(f"{'':{len(kind) + 2}}{engine:12} {r['load_s']:>7.1f} {r['prompt_tokens_per_s']:>13.1f} "
                  f"{r['judgments_per_s']:>12.2f} {r['generation_tokens_per_s']:>10.1f} {r['peak_rss_gb']:>8.2f}  "
                  f"{r['ct2_isa'] if engine == 'ctranslate2' else ''}")
            for name in ("prompt_tokens_per_s", "judgments_per_s", "generation_tokens_per_s", "peak_rss_gb"):
                lines.append(f"{kind}_{engine}_{name}={r[name]:.3f}")
        if "torch" in runs:
            torch_run, ct2_run = runs["torch"], runs["ctranslate2"]
            for name in ("prompt_tokens_per_s", "judgments_per_s", "generation_tokens_per_s"):
                lines.append(f"{kind}_ct2_over_torch_{name}={ct2_run[name] / torch_run[name]:.2f}")
            diffs = [abs(a["p_yes"] - b["p_yes"]) for a, b in zip(torch_run["judged"], ct2_run["judged"])]
            same = [a["answer"] == b["answer"] for a, b in zip(torch_run["judged"], ct2_run["judged"])]
            lines += [f"{kind}_p_yes_abs_diff_max={max(diffs):.3f}",
                      f"{kind}_p_yes_abs_diff_median={sorted(diffs)[len(diffs) // 2]:.3f}",
                      f"{kind}_same_answer={sum(same)}/{len(same)}"]
        ct2 = runs["ctranslate2"]
        lines += [f"{kind}_ct2_whole_prompt_seconds_per_judgment={ct2['single_seconds_per_judgment']:.3f}",
                  f"{kind}_ct2_batch8_seconds_per_judgment={ct2['batch_seconds_per_judgment']:.3f}",
                  f"{kind}_ct2_batch8_p_yes_abs_diff_max={ct2['batch_p_yes_abs_diff_max']:.3f}"]
        mean_tokens = sum(j["tokens_in"] for j in runs["ctranslate2"]["judged"]) / runs["ctranslate2"]["judgments"]
        lines.append(f"{kind}_judgment_prompt_tokens_mean={mean_tokens:.0f}")
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
