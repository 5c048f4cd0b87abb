"""Training the embedded default's SAEs: a separate, cached step (no SAE for this model can be downloaded)."""


from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from ..core.coders.train import train_embedded_saes
from ..core.corpus import build_corpus
from ..instance import MODEL_POOL
from ..resources import SettingsResource, SubjectModelResource
from ..workers import queue_tags
from .corpus import corpus


@asset(
    group_name="inputs",
    pool=MODEL_POOL,
    op_tags=queue_tags(MODEL_POOL),  # its Celery queue (workers.py)
    deps=[corpus],
    description="TopK SAEs trained with sparsify into the watched SAE folder (embedded default only; "
    "a no-op when `embedded_saes` is null in the settings). Re-uses earlier training with the same spec.",
)
def embedded_saes(
    context: AssetExecutionContext, settings: SettingsResource, subject_model: SubjectModelResource
) -> MaterializeResult:
    config = settings.get()
    if config.coders.embedded is None:
        return MaterializeResult(metadata={"status": "disabled in settings (embedded_saes: null)"})
    model = subject_model.load()
    info = build_corpus(config.corpus, model.tokenizer, config.corpus_dir)
    trained = train_embedded_saes(model, info, config.coders.embedded, config.watched_sae_dir, log=context.log.info)
    metadata = {"folder": MetadataValue.path(str(config.watched_sae_dir / config.coders.embedded.run_name))}
    for sae in trained:
        metadata[f"{sae.hookpoint} fvu"] = round(sae.fvu, 4)
        metadata[f"{sae.hookpoint} dead fraction"] = round(sae.dead_fraction, 4)
    metadata["training tokens"] = trained[0].tokens if trained else 0
    return MaterializeResult(metadata=metadata)
