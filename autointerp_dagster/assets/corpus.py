"""The tokenized corpus, stored once as Parquet and shared by every coder of the model."""


from dataclasses import asdict

from dagster import (
    AssetExecutionContext,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    asset,
)

from ..core.corpus import build_corpus, read_tokens
from ..core.store import writes
from ..resources import SettingsResource, StoreResource, SubjectModelResource


@asset(group_name="inputs", description="Corpus text tokenized into fixed-length rows (Parquet).")
def corpus(
    context: AssetExecutionContext,
    settings: SettingsResource,
    subject_model: SubjectModelResource,
    store: StoreResource,
) -> MaterializeResult:
    config = settings.get()
    tokenizer = subject_model.tokenizer()
    info = build_corpus(config.corpus, tokenizer, config.corpus_dir)
    context.log.info(f"corpus {info.corpus_id}: {info.n_rows} rows x {info.ctx_len} tokens at {info.path}")
    writes.write_corpus(store.get(), {**asdict(info), "source": config.corpus.source})
    preview = tokenizer.decode(read_tokens(info)[0][:64].tolist())
    return MaterializeResult(
        data_version=DataVersion(info.corpus_id),  # a new corpus shows downstream caches as stale in the UI
        metadata={
            "corpus_id": info.corpus_id,
            "source": config.corpus.source,
            "rows": info.n_rows,
            "ctx_len": info.ctx_len,
            "tokens": info.n_tokens,
            "encoded_tokens": info.encoded_tokens,
            "documents_read": info.n_documents,
            "bos": config.corpus.bos,
            "path": MetadataValue.path(info.path),
            "first_row_preview": MetadataValue.text(preview),
        }
    )
