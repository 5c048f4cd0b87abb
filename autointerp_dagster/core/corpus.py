"""Text in, fixed-length token rows out, stored once as Parquet and shared by every cache of a model.

Documents are shuffled with a seed, tokenized without special tokens, joined with the EOS
token, and cut into rows of `ctx_len` tokens until the token budget is spent. With
`bos="prepend"` each row is BOS followed by `ctx_len - 1` text tokens.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .atomic import atomic_path
from .config import EMBEDDED_CORPUS, CorpusSpec
from .errors import UserError
from .keys import stable_id
from .models.embedded import kjv_documents

TEXT_SUFFIXES = (".txt", ".jsonl", ".parquet")


class CorpusError(UserError, ValueError):
    """A corpus that cannot be built: missing files, no text, or fewer tokens than one row."""


@dataclass(frozen=True)
class CorpusInfo:
    """What a stored corpus holds; `first_position` is the first position worth encoding."""

    corpus_id: str
    path: str
    n_rows: int
    ctx_len: int
    n_tokens: int
    first_position: int
    n_documents: int
    tokenizer: str

    @property
    def tokens_file(self) -> Path:
        return Path(self.path) / "tokens.parquet"

    @property
    def encoded_tokens(self) -> int:
        """Tokens that reach the sparse coders (BOS positions excluded)."""
        return self.n_rows * (self.ctx_len - self.first_position)


def corpus_id(spec: CorpusSpec, tokenizer) -> str:
    """Stable id of a corpus: changes with the source, the row shape, the budget or the tokenizer's vocabulary
    (not its folder, so moving AUTOINTERP_HOME or re-converting a model keeps every result valid)."""
    vocabulary = stable_id(sorted(tokenizer.get_vocab().items()))
    return stable_id({**spec.model_dump(), "vocabulary": vocabulary, "bos": tokenizer.bos_token_id,
                      "eos": tokenizer.eos_token_id}, 12)


def iter_documents(spec: CorpusSpec) -> Iterator[str]:
    """Yields documents in a seeded random order, from the embedded text, a Hub dataset or local files."""
    if spec.source == EMBEDDED_CORPUS:
        docs = list(kjv_documents())
        random.Random(spec.seed).shuffle(docs)
        yield from docs
    elif spec.source.startswith("hf:"):
        yield from _hub_documents(spec)
    else:
        docs = list(_local_documents(Path(spec.source).expanduser(), spec.text_column))
        random.Random(spec.seed).shuffle(docs)
        yield from docs


def _hub_documents(spec: CorpusSpec) -> Iterator[str]:
    import datasets

    name = spec.source.removeprefix("hf:")
    dataset = datasets.load_dataset(name, spec.dataset_config, split=spec.split, streaming=True)
    dataset = dataset.shuffle(seed=spec.seed, buffer_size=10_000)
    for record in dataset:
        if spec.text_column not in record:
            raise CorpusError(f"dataset {name} has no column {spec.text_column!r}; it has {sorted(record)}")
        yield record[spec.text_column]


def _local_documents(path: Path, text_column: str) -> Iterator[str]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in TEXT_SUFFIXES)
        if not files:
            raise CorpusError(f"corpus folder {path} holds no {'/'.join(TEXT_SUFFIXES)} files")
    elif path.is_file():
        files = [path]
    else:
        raise CorpusError(f"corpus source {path} does not exist (nor is it embedded:kjv or hf:<dataset>)")
    for file in files:
        if file.suffix == ".txt":
            # Blank lines separate documents in plain text files.
            yield from (doc.strip() for doc in file.read_text().split("\n\n") if doc.strip())
        elif file.suffix == ".jsonl":
            for line_no, line in enumerate(file.read_text().splitlines(), 1):
                if line.strip():
                    record = json.loads(line)
                    if text_column not in record:
                        raise CorpusError(f"{file}:{line_no} has no field {text_column!r}")
                    yield record[text_column]
        else:
            table = pq.read_table(file)
            if text_column not in table.column_names:
                raise CorpusError(f"{file} has no column {text_column!r}; it has {table.column_names}")
            yield from (t for t in table.column(text_column).to_pylist() if t)


def build_corpus(spec: CorpusSpec, tokenizer, corpus_root: Path) -> CorpusInfo:
    """Tokenizes the corpus into rows and stores it, unless an identical corpus is already stored."""
    cid = corpus_id(spec, tokenizer)
    target = corpus_root / cid
    if (target / "corpus.json").exists():
        return load_corpus_info(target)
    if spec.bos not in ("prepend", "none"):
        raise CorpusError(f"bos must be 'prepend' or 'none', not {spec.bos!r}")
    first_position = 1 if spec.bos == "prepend" else 0
    if first_position and tokenizer.bos_token_id is None:
        raise CorpusError(f"bos='prepend' but tokenizer {tokenizer.name_or_path} has no BOS token; use bos='none'")
    body_len = spec.ctx_len - first_position
    n_rows_wanted = max(spec.token_budget // spec.ctx_len, 0)
    separator = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []

    buffer: list[int] = []
    rows: list[list[int]] = []
    n_docs = 0
    for doc in iter_documents(spec):
        n_docs += 1
        buffer.extend(tokenizer(doc, add_special_tokens=False)["input_ids"] + separator)
        while len(buffer) >= body_len and len(rows) < n_rows_wanted:
            rows.append(buffer[:body_len])
            del buffer[:body_len]
        if len(rows) >= n_rows_wanted:
            break
    if not rows:
        raise CorpusError(
            f"corpus {spec.source} gave {n_docs} documents and {len(buffer)} tokens, fewer than one row of "
            f"{spec.ctx_len} tokens within a budget of {spec.token_budget} tokens"
        )
    tokens = np.asarray(rows, dtype=np.int32)
    if first_position:
        tokens = np.concatenate([np.full((len(rows), 1), tokenizer.bos_token_id, np.int32), tokens], axis=1)

    table = pa.table(
        {
            "row": pa.array(np.arange(len(rows), dtype=np.int32)),
            "tokens": pa.FixedSizeListArray.from_arrays(pa.array(tokens.ravel()), spec.ctx_len),
        }
    )
    info = CorpusInfo(
        corpus_id=cid,
        path=str(target),
        n_rows=len(rows),
        ctx_len=spec.ctx_len,
        n_tokens=int(tokens.size),
        first_position=first_position,
        n_documents=n_docs,
        tokenizer=str(getattr(tokenizer, "name_or_path", "")),
    )
    with atomic_path(target) as partial:
        partial.mkdir()
        pq.write_table(table, partial / "tokens.parquet", compression="zstd")
        (partial / "corpus.json").write_text(json.dumps({**asdict(info), "spec": spec.model_dump()}, indent=2))
    return info


def load_corpus_info(path: str | Path) -> CorpusInfo:
    meta = json.loads((Path(path) / "corpus.json").read_text())
    meta.pop("spec", None)
    return CorpusInfo(**{**meta, "path": str(path)})


def iter_token_batches(info: CorpusInfo, batch_rows: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields (row ids, tokens [batch, ctx_len]) without loading the whole corpus."""
    parquet = pq.ParquetFile(info.tokens_file)
    for batch in parquet.iter_batches(batch_size=batch_rows, columns=["row", "tokens"]):
        rows = batch.column(0).to_numpy()
        flat = batch.column(1).values.to_numpy(zero_copy_only=False)
        yield rows, flat.reshape(len(rows), info.ctx_len)


def read_tokens(info: CorpusInfo) -> np.ndarray:
    """The whole token matrix [n_rows, ctx_len] (small: 4 bytes a token)."""
    table = pq.read_table(info.tokens_file, columns=["tokens"])
    return table.column(0).combine_chunks().values.to_numpy().reshape(info.n_rows, info.ctx_len)
