"""Activation-cache benchmark on the embedded model (Gemma 3 270M, CPU) and its two trained SAEs.

Prints, last, one `name=value` per line, every ratio measured within this one run:
  cache_vs_forward_ratio   caching throughput / a bare forward pass to the same layer, same batches
  cache_peak_rss_growth    peak RSS caching 10x the token budget / peak RSS at 1x (separate processes)
  bytes_per_nonzero        Parquet bytes on disk per cached non-zero activation
  cache_two_saes_cost      time to cache both SAEs (layers 6 and 7) in one pass / mean time for one alone
Targets: >= 0.85, <= 1.15, <= 6, <= 1.3. delphi on the same model and CPU: 0.38 of a forward pass stopped
at layer 7 (it runs every layer), 9.25 bytes per non-zero plus the tokens in every shard, all in RAM.

Uses $AUTOINTERP_HOME (default ./.autointerp): run `make run` first, or this builds the model and SAEs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autointerp_dagster.core.cache.writer import CacheTarget, cache_activations  # noqa: E402
from autointerp_dagster.core.coders import CoderSource, load_coder  # noqa: E402
from autointerp_dagster.core.coders.train import train_embedded_saes  # noqa: E402
from autointerp_dagster.core.config import load_settings  # noqa: E402
from autointerp_dagster.core.corpus import build_corpus, iter_token_batches  # noqa: E402
from autointerp_dagster.core.models.subject import load_subject_model  # noqa: E402

BASE_TOKENS = 8_192


def setup(tokens: int):
    settings = load_settings()
    model = load_subject_model(settings.model.name, settings.models_dir)
    corpus_config = settings.corpus.model_copy(update={"token_budget": tokens})
    info = build_corpus(corpus_config, model.tokenizer, settings.corpus_dir)
    default_corpus = build_corpus(settings.corpus, model.tokenizer, settings.corpus_dir)
    trained = train_embedded_saes(model, default_corpus, settings.coders.embedded, settings.watched_sae_dir,
                                  log=lambda m: print(m, file=sys.stderr))
    coders = {t.hookpoint: load_coder(CoderSource(str(t.path)), base_model=model.body) for t in trained}
    return model, info, coders


def timed_cache(model, info, coders, folder: Path) -> tuple[float, list]:
    targets = [CacheTarget(f"bench/{c.hookpoint}", c, folder / c.hookpoint) for c in coders]
    started = time.perf_counter()
    summaries = cache_activations(model, info, targets, n_ranges=8)
    return time.perf_counter() - started, summaries


def timed_forward(model, info, hookpoint: str) -> float:
    started = time.perf_counter()
    for _rows, tokens in iter_token_batches(info, 16):
        model.capture(torch.from_numpy(tokens.astype(np.int64)), [(hookpoint, "output")])
    return time.perf_counter() - started


def child_peak_rss(tokens: int) -> None:
    """Runs in a fresh process: caches one SAE over `tokens` tokens and reports its peak RSS."""
    model, info, coders = setup(tokens)
    with tempfile.TemporaryDirectory() as folder:
        timed_cache(model, info, [coders["layers.7"]], Path(folder))
    print(json.dumps({"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


def peak_rss(tokens: int) -> int:
    out = subprocess.run([sys.executable, __file__, "--child-rss", str(tokens)], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_bytes"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child-rss", type=int)
    parser.add_argument("--tokens", type=int, default=BASE_TOKENS * 2)
    args = parser.parse_args()
    if args.child_rss:
        return child_peak_rss(args.child_rss)

    model, info, coders = setup(args.tokens)
    print(f"model {model.name} on {model.device}, {torch.get_num_threads()} threads; "
          f"{info.encoded_tokens} tokens ({info.n_rows} rows x {info.ctx_len})")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        timed_forward(model, info, "layers.7")  # warm-up
        forward, cache_one, cache6, cache_both = [], [], [], []
        for repeat in range(2):  # interleaved, best of two, so machine noise hits all alike
            forward.append(timed_forward(model, info, "layers.7"))
            seconds, one = timed_cache(model, info, [coders["layers.7"]], tmp / f"one{repeat}")
            cache_one.append(seconds)
            cache6.append(timed_cache(model, info, [coders["layers.6"]], tmp / f"six{repeat}")[0])
            cache_both.append(timed_cache(model, info, [coders["layers.6"], coders["layers.7"]], tmp / f"b{repeat}")[0])
        print(f"forward to layers.7: {min(forward):.1f} s ({info.encoded_tokens / min(forward):.0f} tokens/s)")
        print(f"cache layers.7: {min(cache_one):.1f} s; layers.6: {min(cache6):.1f} s; both: {min(cache_both):.1f} s")
        summary = one[0]
        print(f"non-zeros {summary.nnz} ({summary.nnz / summary.encoded_tokens:.1f} per token), "
              f"{summary.bytes_on_disk} bytes, dead latents {summary.dead_fraction:.1%}")

    rss_1x, rss_10x = peak_rss(BASE_TOKENS), peak_rss(BASE_TOKENS * 10)
    print(f"peak RSS caching {BASE_TOKENS} tokens: {rss_1x / 2**20:.0f} MiB; "
          f"{BASE_TOKENS * 10}: {rss_10x / 2**20:.0f} MiB")
    print(f"cache_vs_forward_ratio={min(forward) / min(cache_one):.3f}")
    print(f"cache_peak_rss_growth={rss_10x / rss_1x:.3f}")
    print(f"bytes_per_nonzero={summary.bytes_per_nonzero:.2f}")
    print(f"cache_two_saes_cost={min(cache_both) / ((min(cache_one) + min(cache6)) / 2):.3f}")


if __name__ == "__main__":
    main()
