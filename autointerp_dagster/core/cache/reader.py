"""Reading a complete activation cache, and telling whether its files are still the ones that were written.

A cache folder holds one Parquet shard per latent range, the per-latent statistics and a manifest written
last (so a folder without one is incomplete). The manifest records each file's size, modification time
and sha256: `verify` re-hashes only files whose size or time changed, so checking a large cache on every
plan costs a few `stat` calls, and a shard that was truncated or overwritten is found before anything reads
it (DuckDB itself reads many damaged pages as silently wrong values). A reader checks each file the same way
before its first read; a damaged one (or one that fails to decode) raises `CacheCorruptError`, and the cache
is marked incomplete so that the next plan re-caches it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..latent_ranges import range_keys

MANIFEST = "manifest.json"
STATS_FILE = "latent_stats.parquet"
CORRUPT_MANIFEST = "manifest.corrupt.json"  # a manifest set aside because its cache failed to read


class CacheMissingError(FileNotFoundError):
    """No complete cache at a path (never built, or its build did not finish)."""


class CacheCorruptError(OSError):
    """A cache file that no longer holds what was written: the cache is re-built by the next run."""


@dataclass(frozen=True)
class CacheSummary:
    key: str
    path: str
    corpus_id: str
    n_latents: int
    n_ranges: int
    n_rows: int
    encoded_tokens: int
    nnz: int
    dead_latents: int
    dead_fraction: float
    seconds: float
    tokens_per_s: float
    bytes_on_disk: int
    activation_dtype: str
    clamped_values: int

    @property
    def bytes_per_nonzero(self) -> float:
        return self.bytes_on_disk / max(self.nnz, 1)


def cache_folder(cache_dir: Path, key: str) -> Path:
    """The cache folder of a coder: one flat folder per key (the key quoted, so keys never nest)."""
    return Path(cache_dir) / quote(key, safe="")


def shard_name(range_key: str) -> str:
    return f"latents-{range_key}.parquet"


def file_record(path: Path) -> dict:
    """What the manifest keeps of a file to tell later whether it changed."""
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": _sha256(path)}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(folder: Path) -> dict | None:
    """The manifest of a complete cache, or None."""
    manifest = Path(folder) / MANIFEST
    return json.loads(manifest.read_text()) if manifest.exists() else None


class ActivationCache:
    """Read access to one complete cache: manifest, per-latent statistics, and records by latent."""

    def __init__(self, path: Path):
        self.path = Path(path)
        manifest = read_manifest(self.path)
        if manifest is None:
            raise CacheMissingError(f"no complete activation cache at {self.path}; materialise activation_cache first")
        self.manifest = manifest
        self.summary = CacheSummary(**self.manifest["summary"])
        self.bounds = np.asarray(self.manifest["range_bounds"])
        self._verified: set[str] = set()  # files found unchanged since they were written

    @property
    def n_latents(self) -> int:
        return self.summary.n_latents

    def verify(self) -> list[str]:
        """What no longer matches the manifest (missing, resized or rewritten files); empty when all is well.
        Caches written before the manifest recorded its files have nothing to compare and pass."""
        return [problem for name in self.manifest.get("files", {}) if (problem := self._file_problem(name))]

    def _file_problem(self, name: str) -> str | None:
        recorded = self.manifest.get("files", {}).get(name)
        path = self.path / name
        if recorded is None or name in self._verified:
            return None
        if not path.exists():
            return f"{name} is missing"
        stat = path.stat()
        if stat.st_size != recorded["size"]:
            return f"{name} has {stat.st_size:,} bytes where {recorded['size']:,} were written"
        if stat.st_mtime_ns != recorded["mtime_ns"] and _sha256(path) != recorded["sha256"]:
            return f"{name} was rewritten since it was cached (its sha256 differs)"
        self._verified.add(name)
        return None

    def shard_files(self, start: int, end: int) -> list[Path]:
        """The range shards holding latents in [start, end)."""
        keys = range_keys(len(self.bounds) - 1)
        return [
            self.path / shard_name(key)
            for key, lo, hi in zip(keys, self.bounds[:-1], self.bounds[1:])
            if lo < end and hi > start
        ]

    def records(self, start: int, end: int) -> pa.Table:
        """All (row, pos, latent, activation) records of latents in [start, end), sorted by latent."""
        files = [str(f) for f in self.shard_files(start, end)]
        if not files:
            return pa.table({"row": [], "pos": [], "latent": [], "activation": []})
        for name in (Path(f).name for f in files):  # a shard damaged since the plan checked it is not read
            if problem := self._file_problem(name):
                raise self._corrupt(problem)
        con = duckdb.connect()
        try:
            return con.sql(
                "SELECT row, pos, latent, CAST(activation AS FLOAT) AS activation FROM read_parquet(?) "
                "WHERE latent >= ? AND latent < ? ORDER BY latent, row, pos",
                params=[files, start, end],
            ).to_arrow_table()
        except (duckdb.IOException, duckdb.InvalidInputException, duckdb.InternalException) as exc:
            raise self._corrupt(f"reading latents {start}-{end - 1}: {exc}") from exc
        finally:
            con.close()

    def latent_stats(self) -> pa.Table:
        if problem := self._file_problem(STATS_FILE):
            raise self._corrupt(problem)
        try:
            return pq.read_table(self.path / STATS_FILE)
        except (OSError, pa.ArrowInvalid) as exc:
            raise self._corrupt(f"reading {STATS_FILE}: {exc}") from exc

    def _corrupt(self, what: str) -> CacheCorruptError:
        """Sets the manifest aside, so the cache counts as missing and the next run re-caches it."""
        manifest = self.path / MANIFEST
        if manifest.exists():
            manifest.replace(self.path / CORRUPT_MANIFEST)
        return CacheCorruptError(f"the activation cache at {self.path} is damaged ({what}); it is marked "
                                 "incomplete, and the next `autointerp run` (or the sensor) caches it again")
