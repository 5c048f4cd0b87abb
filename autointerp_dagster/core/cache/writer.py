"""Streaming, crash-safe caching of sparse latent activations as Parquet shards.

One forward pass over the corpus feeds every coder of the model at once (stopped at the
deepest hookpoint any of them reads). Each coder's non-zero activations become records
(row, pos, latent, activation) buffered per latent range and flushed as sorted row groups
to one Parquet file per range, so memory stays bounded whatever the token budget. Tokens
are not copied: records point into the corpus's token file by (row, pos).

A cache is written into a temporary folder and renamed into place only once complete, so a
crash or kill leaves the previous cache (or none) and never a partial one, and a re-run
replaces the cache instead of adding to it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from ..atomic import atomic_path
from ..coders import SparseCoder
from ..corpus import CorpusInfo, iter_token_batches
from ..latent_ranges import range_bounds, range_keys
from ..models.subject import SubjectModel
from .reader import MANIFEST, STATS_FILE, CacheSummary, file_record, shard_name

FP16_MAX = float(np.finfo(np.float16).max)


@dataclass(frozen=True)
class CacheTarget:
    """One coder to cache, and the folder its cache lives in."""

    key: str
    coder: SparseCoder
    path: Path
    fingerprint: str = ""  # of the coder's files, so a later run can tell whether the cache is current


class _RangeShards:
    """Per-range record buffers of one coder, flushed as sorted row groups to one file per range."""

    def __init__(self, folder: Path, bounds: np.ndarray, activation_dtype: str):
        self.folder = folder
        self.bounds = bounds
        self.keys = range_keys(len(bounds) - 1)
        self.schema = pa.schema(
            [
                ("row", pa.int32()),
                ("pos", pa.uint16()),
                ("latent", pa.int32()),
                ("activation", pa.float16() if activation_dtype == "float16" else pa.float32()),
            ]
        )
        # Sorted integer columns delta-encode to a few bits; DuckDB reads float16 only plain-encoded.
        self.encodings = {"row": "DELTA_BINARY_PACKED", "pos": "DELTA_BINARY_PACKED", "latent": "DELTA_BINARY_PACKED",
                          "activation": "PLAIN" if activation_dtype == "float16" else "BYTE_STREAM_SPLIT"}
        self.buffers: list[list[tuple[np.ndarray, ...]]] = [[] for _ in self.keys]
        self.writers: dict[int, pq.ParquetWriter] = {}
        self.buffered = 0

    def add(self, row: np.ndarray, pos: np.ndarray, latent: np.ndarray, activation: np.ndarray) -> None:
        which = np.searchsorted(self.bounds, latent, side="right") - 1
        order = np.argsort(which, kind="stable")
        splits = np.searchsorted(which[order], np.arange(1, len(self.keys)))
        for index, part in enumerate(np.split(order, splits)):
            if len(part):
                self.buffers[index].append((row[part], pos[part], latent[part], activation[part]))
        self.buffered += len(latent)

    def flush(self) -> None:
        for index, chunks in enumerate(self.buffers):
            if not chunks:
                continue
            row, pos, latent, activation = (np.concatenate(c) for c in zip(*chunks))
            order = np.lexsort((pos, row, latent))
            table = pa.table(
                [
                    pa.array(row[order], pa.int32()),
                    pa.array(pos[order], pa.uint16()),
                    pa.array(latent[order], pa.int32()),
                    pa.array(activation[order].astype(self.schema.field("activation").type.to_pandas_dtype())),
                ],
                schema=self.schema,
            )
            if index not in self.writers:
                self.writers[index] = pq.ParquetWriter(
                    self.folder / shard_name(self.keys[index]),
                    self.schema,
                    compression="zstd",
                    compression_level=3,
                    use_dictionary=False,
                    column_encoding=self.encodings,
                )
            self.writers[index].write_table(table)
            self.buffers[index] = []
        self.buffered = 0

    def close(self) -> None:
        self.flush()
        for index, key in enumerate(self.keys):
            if index in self.writers:
                self.writers[index].close()
            else:  # a range with no activations still gets a (valid, empty) shard
                pq.write_table(self.schema.empty_table(), self.folder / shard_name(key))


class _CoderRun:
    """The state of one coder during a caching pass: its shards and per-latent statistics.

    Everything is written into `tmp`, which the caller renames into place once complete.
    """

    def __init__(self, target: CacheTarget, n_ranges: int, tmp: Path):
        self.target = target
        n = target.coder.n_latents
        self.tmp = tmp
        self.tmp.mkdir()
        self.bounds = range_bounds(n, n_ranges)
        self.shards: _RangeShards | None = None  # opened at the first batch, whose values pick the dtype
        self.activation_dtype = ""
        self.counts = torch.zeros(n, dtype=torch.int64)
        self.maxes = torch.zeros(n, dtype=torch.float32)
        self.sums = torch.zeros(n, dtype=torch.float64)
        self.nnz = 0
        self.clamped = 0

    @property
    def buffered(self) -> int:
        return self.shards.buffered if self.shards else 0

    def add(self, rows: np.ndarray, first_position: int, acts: torch.Tensor) -> None:
        batch, length, width = acts.shape
        values, indices = self.target.coder.encode_sparse(acts.reshape(-1, width))
        values = values.float()
        mask = values > 0
        token, slot = mask.nonzero(as_tuple=True)
        latent = indices[token, slot].cpu()
        value = values[token, slot].cpu()
        token = token.cpu()
        if self.shards is None:
            self.activation_dtype = choose_activation_dtype(float(value.max()) if len(value) else 0.0)
            self.shards = _RangeShards(self.tmp, self.bounds, self.activation_dtype)
        self.counts += torch.bincount(latent, minlength=len(self.counts))
        self.maxes.scatter_reduce_(0, latent, value, reduce="amax")
        self.sums.index_add_(0, latent, value.double())
        value_np = value.numpy()
        if self.activation_dtype == "float16" and value_np.size and value_np.max() > FP16_MAX:
            self.clamped += int((value_np > FP16_MAX).sum())
            value_np = np.minimum(value_np, FP16_MAX)
        token_np = token.numpy()
        self.shards.add(
            rows[token_np // length].astype(np.int32),
            (token_np % length + first_position).astype(np.uint16),
            latent.numpy().astype(np.int32),
            value_np,
        )
        self.nnz += len(value_np)

    def finish(self, corpus: CorpusInfo, seconds: float, n_ranges: int) -> CacheSummary:
        if self.shards is None:  # an empty corpus never reaches here; keep the invariant anyway
            self.activation_dtype = "float16"
            self.shards = _RangeShards(self.tmp, self.bounds, self.activation_dtype)
        self.shards.close()
        n = len(self.counts)
        counts = self.counts.numpy()
        stats = pa.table(
            {
                "latent": pa.array(np.arange(n, dtype=np.int32)),
                "n_activations": pa.array(counts),
                "max_activation": pa.array(self.maxes.numpy()),
                "mean_activation": pa.array(np.where(counts > 0, self.sums.numpy() / np.maximum(counts, 1), 0.0)),
                "frequency": pa.array(counts / max(corpus.encoded_tokens, 1)),
            }
        )
        pq.write_table(stats, self.tmp / STATS_FILE)
        coder = self.target.coder
        dead = int((counts == 0).sum())
        summary = CacheSummary(
            key=self.target.key,
            path=str(self.target.path),
            corpus_id=corpus.corpus_id,
            n_latents=n,
            n_ranges=n_ranges,
            n_rows=corpus.n_rows,
            encoded_tokens=corpus.encoded_tokens,
            nnz=self.nnz,
            dead_latents=dead,
            dead_fraction=dead / max(n, 1),
            seconds=seconds,
            tokens_per_s=corpus.encoded_tokens / max(seconds, 1e-9),
            bytes_on_disk=sum(p.stat().st_size for p in self.tmp.glob("latents-*.parquet")),
            activation_dtype=self.activation_dtype,
            clamped_values=self.clamped,
        )
        manifest = {
            "summary": asdict(summary),
            "fingerprint": self.target.fingerprint,
            "corpus_path": corpus.path,
            "ctx_len": corpus.ctx_len,
            "first_position": corpus.first_position,
            "coder": {"format": coder.format, "hookpoint": coder.hookpoint, "d_in": coder.d_in,
                      "capture_module": coder.capture_module, "capture": coder.capture},
            "range_bounds": self.bounds.tolist(),
            # size, time and sha256 of every file, so a damaged cache is found before it is read (reader.verify)
            "files": {p.name: file_record(p) for p in sorted(self.tmp.glob("*.parquet"))},
        }
        (self.tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        return summary

    def abandon(self) -> None:
        """Closes open shard files; the caller removes the folder."""
        for writer in (self.shards.writers.values() if self.shards else ()):
            writer.close()


def choose_activation_dtype(first_batch_max: float) -> str:
    """float16 (2 bytes) unless activations come within 1/8 of its range; then float32."""
    return "float16" if first_batch_max * 8 < FP16_MAX else "float32"


def cache_activations(
    model: SubjectModel,
    corpus: CorpusInfo,
    targets: Sequence[CacheTarget],
    n_ranges: int,
    batch_rows: int = 16,
    flush_records: int = 4_000_000,
    progress: Callable[[int, int, float], None] | None = None,
) -> list[CacheSummary]:
    """Caches every target coder in one pass over the corpus; returns one summary per target.

    All targets must belong to `model`. `progress(rows_done, rows_total, tokens_per_s)` is
    called after each batch.
    """
    if not targets:
        return []
    captures = list(dict.fromkeys((t.coder.capture_module, t.coder.capture) for t in targets))
    widths = model.widths(captures)
    for target in targets:
        coder = target.coder
        coder.check_width(widths[(coder.capture_module, coder.capture)], model.name)

    started = time.monotonic()
    rows_done = 0
    with ExitStack() as builds:  # each cache is renamed into place only if the whole pass succeeds
        runs = [_CoderRun(t, n_ranges, builds.enter_context(atomic_path(t.path))) for t in targets]
        try:
            for rows, tokens in iter_token_batches(corpus, batch_rows):
                captured = model.capture(torch.from_numpy(tokens.astype(np.int64)), captures)
                for run in runs:
                    coder = run.target.coder
                    acts = captured[(coder.capture_module, coder.capture)][:, corpus.first_position:, :]
                    run.add(rows, corpus.first_position, acts)
                if sum(run.buffered for run in runs) >= flush_records:
                    for run in runs:
                        run.shards.flush()
                rows_done += len(rows)
                if progress:
                    elapsed = time.monotonic() - started
                    progress(rows_done, corpus.n_rows, rows_done * (corpus.ctx_len - corpus.first_position) / elapsed)
            seconds = time.monotonic() - started
            return [run.finish(corpus, seconds, n_ranges) for run in runs]
        except BaseException:
            for run in runs:
                run.abandon()
            raise
