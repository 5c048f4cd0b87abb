"""Example-sampling benchmark: train + test + random negatives for every latent of one cached SAE.

Prints, last, `examples_latents_per_s` (target >= 250 on the embedded default's cache: 131k tokens,
4096-latent TopK SAE with k=32; delphi builds 49 latents/s on a similar cache), after
`hard_negative_latents_per_s`, the rate of the extra hard-negative step alone (the corpus's window
embeddings are computed once, or read from disk, outside that timing).

Uses the caches under $AUTOINTERP_HOME (default ./.autointerp): run `autointerp run` first.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autointerp_dagster.core.cache import MANIFEST, ActivationCache  # noqa: E402
from autointerp_dagster.core.config import SamplingConfig, load_settings  # noqa: E402
from autointerp_dagster.core.corpus import load_corpus_info, read_tokens  # noqa: E402
from autointerp_dagster.core.models.loading import load_tokenizer  # noqa: E402
from autointerp_dagster.core.sampling import (  # noqa: E402
    TokenDecoder,
    build_examples,
    window_pool_embeddings,
)


def find_cache(cache_dir: Path, key: str | None) -> tuple[str, Path]:
    caches = {unquote(m.parent.name): m.parent for m in sorted(cache_dir.glob(f"*/{MANIFEST}"))}
    if not caches:
        sys.exit(f"no complete activation cache under {cache_dir}; run `autointerp run` first")
    if key is None:
        key = next(iter(caches))
    if key not in caches:
        sys.exit(f"no cache for {key!r}; have {sorted(caches)}")
    return key, caches[key]


def timed_build(cache, tokens, decoder, latents, key, config, pool=None):
    started = time.perf_counter()
    built = build_examples(cache, tokens, decoder, latents, key, config, pool_embeddings=pool)
    return time.perf_counter() - started, built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key", help="SAE key (default: the first cached one)")
    parser.add_argument("--latents", type=int, help="only the first N latents (default: all)")
    args = parser.parse_args()

    settings = load_settings()
    key, path = find_cache(settings.cache_dir, args.key)
    cache = ActivationCache(path)
    corpus = load_corpus_info(Path(cache.manifest["corpus_path"]))
    tokens = read_tokens(corpus)
    decoder = TokenDecoder(load_tokenizer(settings.model.name, settings.models_dir))
    config = SamplingConfig()
    latents = range(min(args.latents or cache.n_latents, cache.n_latents))
    n = len(latents)
    print(f"cache {key}: {cache.n_latents} latents, {cache.summary.nnz} records, "
          f"{corpus.n_rows}x{corpus.ctx_len} tokens")

    # Cold (reported): the decoder learns the corpus's vocabulary inside the timing, as a fresh process would.
    seconds, built = timed_build(cache, tokens, decoder, latents, key, config)
    warm = min(timed_build(cache, tokens, decoder, latents, key, config)[0] for _ in range(2))
    reasons = Counter(le.reason.split(":")[0] if le.reason.startswith("dead") else "too few windows"
                      for le in built if le.status == "skipped")
    ok = [le for le in built if le.status == "ok"]
    print(f"latents={n} ok={len(ok)} skipped={n - len(ok)} {json.dumps(dict(reasons))}")
    print(f"examples per ok latent: train={sum(len(le.train) for le in ok) / max(len(ok), 1):.1f} "
          f"test={sum(len(le.test) for le in ok) / max(len(ok), 1):.1f} "
          f"random={sum(len(le.random_negatives) for le in ok) / max(len(ok), 1):.1f}")
    print(f"build_seconds={seconds:.2f} warm_build_seconds={warm:.2f}")

    started = time.perf_counter()
    pool = window_pool_embeddings(corpus, tokens, decoder, config.example_ctx_len)
    print(f"pool_windows={len(pool)} pool_seconds={time.perf_counter() - started:.2f} (embedded once per corpus)")
    with_hard = min(timed_build(cache, tokens, decoder, latents, key, config, pool)[0] for _ in range(2))
    # The extra step's own rate, from the difference of best-of-two timings (noisy when it is tiny).
    print(f"with_hard_negatives_latents_per_s={n / with_hard:.1f}")
    print(f"hard_negative_latents_per_s={n / max(with_hard - warm, 1e-3):.1f}")
    print(f"examples_latents_per_s={n / seconds:.1f}")


if __name__ == "__main__":
    main()
