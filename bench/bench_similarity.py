"""Latent-matching benchmark: dense Hungarian against sparse top-k matching at 4,096 to 131,072 latents.

Synthetic decoders with a known answer: B is a permuted copy of A (unit Gaussian rows, d = 640) with noise of
the same norm as the signal (cosine ~0.7 with its original, far above the ~0.27 that chance reaches among
131k random rows). Prints the seconds and the share of latents matched to their true partner for each size and
method. The dense problem holds an n x n float64 matrix (8.6 GB at 32k, 137 GB at 131k): sizes above
`--dense-max` are not run; the sparse one computes all n^2 cosines chunk by chunk (memory bounded, time ~n^2):
sizes above `--sparse-max` are not run either. Sizes not run are extrapolated with a power law fitted on the
measured ones, and printed as `..._seconds_extrapolated`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autointerp_dagster.core.similarity.matching import (  # noqa: E402
    hungarian_matching,
    random_decoder,
    sparse_topk_matching,
)


def planted_pair(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = random_decoder(n, d, seed)
    perm = rng.permutation(n)
    b = a[perm]
    for start in range(0, n, 16384):  # in place, chunk by chunk: bounded memory at 131k
        chunk = b[start:start + 16384]
        chunk += rng.standard_normal(chunk.shape, dtype=np.float32) / np.sqrt(d)
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
    return a, b, perm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192, 16384, 32768, 131072])
    parser.add_argument("--dense-max", type=int, default=16384, help="largest size solved densely")
    parser.add_argument("--sparse-max", type=int, default=32768, help="largest size solved sparsely")
    parser.add_argument("--d", type=int, default=640)
    parser.add_argument("--top-k", type=int, default=8)
    args = parser.parse_args()
    results: dict[str, float] = {}
    times: dict[str, dict[int, float]] = {"dense": {}, "sparse": {}}
    for n in args.sizes:
        if n > max(args.dense_max, args.sparse_max):
            continue
        a, b, perm = planted_pair(n, args.d, seed=n)
        solvers = (("dense", args.dense_max, hungarian_matching),
                   ("sparse", args.sparse_max, lambda x, y: sparse_topk_matching(x, y, args.top_k)))
        for method, largest, solve in solvers:
            if n > largest:
                continue
            matching = solve(a, b)
            correct = float((perm[matching.latent_b] == matching.latent_a).mean())
            times[method][n] = matching.seconds
            results[f"{method}_{n}_seconds"] = round(matching.seconds, 2)
            results[f"{method}_{n}_correct"] = round(correct, 4)
            print(f"{method:6} n={n}: {matching.seconds:.1f} s, {correct:.4f} matched correctly", flush=True)
        del a, b
    for method, measured in times.items():
        if len(measured) < 2:
            continue
        slope, intercept = np.polyfit(np.log(list(measured)), np.log(list(measured.values())), 1)
        results[f"{method}_time_exponent"] = round(float(slope), 2)
        for n in args.sizes:
            if n not in measured:
                results[f"{method}_{n}_seconds_extrapolated"] = round(float(np.exp(intercept) * n**slope), 1)
    for n in args.sizes:
        results[f"dense_{n}_matrix_gb"] = round(n * n * 8 / 1e9, 1)
    for name, value in results.items():
        print(f"{name}={value}")


if __name__ == "__main__":
    main()
