"""Exports others can load: a Parquet dataset folder with a dataset card (`datasets.load_dataset(folder)` reads
it, offline), and Neuronpedia's JSON layout for explanations and activations.

Both read through the pages' query layer, so an export holds exactly what the pages show.

Neuronpedia mapping (its `Explanation` and `Activation` records, webapp `schema.prisma`):
- `modelId`: the SAE key's model part (`gemma-3-270m`); `layer`: the rest, `/` -> `-` (`layers.6-embedded-topk`;
  Neuronpedia's own source ids read like `6-res-jb`, so rename on upload if needed); `index`: the latent, a string.
- Explanation: `description` = the explanation, `typeName` = our explainer id, `explanationModelName` = the
  explainer's `backend:model`, `scores` = one `{explanationScoreTypeName: "<scorer>_<metric>",
  explanationScoreModelName: <judge and scorer config>, value}` per own score (the shuffled control is ours alone:
  it goes under `notes`). Failed explanations are not exported.
- Activation: one per activating example window: `tokens`, `values` (raw activations), `maxValue`,
  `maxValueTokenIndex`, `minValue`, `dataIndex` = the corpus row, `dataSource` = `<set> quantile <q>`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..atomic import atomic_path
from ..reporting.summary import SCORER_METRICS
from ..store import ResultsStore
from .gather import ACTIVATING_SETS, SCORE_COLUMNS, gather_index, iter_latent_pages
from .render import pages_folder

SCORE_FIELDS = ("sae", "latent", "scorer", "explanation_id", "explainer", "explainer_model", "judge", "scorer_config",
                "control", "control_latent", "status", "accuracy", "balanced_accuracy", "precision", "recall", "f1",
                "auc", "ci_low", "ci_high", "auc_ci_low", "auc_ci_high", "n_examples", "n_failed")


def _column(name: str) -> str:
    return name.replace(" ", "_")


def explanation_rows(store: ResultsStore, saes: list[str]) -> list[dict]:
    """One flat row per explanation: the index's row, scores as `<scorer>_<metric>` and `..._shuffled` columns."""
    out = []
    for sae in saes:
        for row in gather_index(store, sae).rows:
            flat = {"sae": sae, **{k: v for k, v in row.items() if k != "scores"}}
            for name in SCORE_COLUMNS:
                own, shuffled = row["scores"][name]
                flat[_column(name)] = own
                flat[_column(name) + "_shuffled"] = shuffled
            out.append(flat)
    return out


def _card(saes: list[str], files: dict[str, str], n_rows: dict[str, int]) -> str:
    metrics = ", ".join(f"`{s}_{m}`" for s, m in SCORER_METRICS)
    listed = "\n".join(f"- `{sae}`" for sae in saes)
    draws_config = f"- config_name: draws\n  data_files: {files['draws']}\n" if "draws" in files else ""
    draws_text = (f"- `draws` ({n_rows['draws']} rows): every best-of-k explanation draw: `draw` (0 is the first), "
                  "`explanation`, `status`, `choice_auc` (on the held-out windows the choice used) and "
                  "`heldout_auc` (on the other half), `chosen`, and its tokens.\n" if "draws" in files else "")
    return f"""---
configs:
- config_name: explanations
  data_files: {files["explanations"]}
  default: true
- config_name: scores
  data_files: {files["scores"]}
{draws_config}tags:
- interpretability
- sparse-autoencoder
- autointerp
---
# SAE latent explanations and scores

Natural-language explanations of sparse-autoencoder latents and their scores, made by autointerp-dagster
(the method of "Automatically Interpreting Millions of Features in Large Language Models", arXiv 2410.13928).

SAEs ({len(saes)}):
{listed}

## Configurations
- `explanations` ({n_rows["explanations"]} rows): one row per explanation: `sae`, `latent`, `explanation`, `status`
  (`ok` or `failed`, with `error`), `explainer` (configuration id), `model` (explainer `backend:model`), `judge`,
  the latent's `frequency`, `n_activations`, `max_activation`, and per scorer and metric ({metrics}) the score of
  the latent's own explanation beside `..._shuffled`, the same latent judged against another latent's explanation
  (the control). A score is meaningful only by its distance from its control.
- `scores` ({n_rows["scores"]} rows): every score row with its 95% bootstrap intervals (`ci_low`/`ci_high` for balanced
  accuracy, `auc_ci_low`/`auc_ci_high` for AUC), counts and status; `control` is `none` (own explanation) or
  `shuffled` (with `control_latent`).
{draws_text}
```python
from datasets import load_dataset
explanations = load_dataset("path/to/this/folder", split="train")
scores = load_dataset("path/to/this/folder", "scores", split="train")
```
"""


def export_parquet(store: ResultsStore, saes: list[str], out: Path) -> Path:
    """Writes `out/` (replaced whole): `data/explanations-<hash>.parquet`, `data/scores-<hash>.parquet`,
    `data/draws-<hash>.parquet` where best-of-k explanations were drawn, and the `README.md` card whose `configs:`
    name them."""
    rows = explanation_rows(store, saes)
    if not rows:  # `datasets` cannot load a Parquet file without rows: say so instead of writing one
        raise ValueError(f"nothing to export: no explanation recorded for {', '.join(saes) or 'any SAE'}")
    with store.connect() as con:
        scores = _rows_of(con, "scores", ", ".join(SCORE_FIELDS), "sae, latent, scorer, control", saes)
        draws = _rows_of(con, "explanation_draws", "*", "sae, latent, explainer, model, draw", saes)
    if scores is None:
        scores = pa.table({name: pa.array([], pa.string()) for name in SCORE_FIELDS})
    tables = {"explanations": pa.Table.from_pylist(rows), "scores": scores}
    if draws is not None and draws.num_rows:  # best-of-k explanations were drawn
        tables["draws"] = draws
    with atomic_path(Path(out)) as tmp:
        (tmp / "data").mkdir(parents=True)
        files = {name: _write_named_by_content(table, tmp / "data", name) for name, table in tables.items()}
        (tmp / "README.md").write_text(_card(saes, files, {name: table.num_rows for name, table in tables.items()}))
    return Path(out)


def _rows_of(con, table: str, columns: str, order: str, saes: list[str]) -> pa.Table | None:
    """The SAEs' rows of `table`, or None where the store has no such table yet."""
    exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]).fetchall()
    if not exists[0][0] or not saes:
        return None
    return con.sql(f"SELECT {columns} FROM {table} WHERE list_contains(?, sae) ORDER BY {order}",
                   params=[saes]).to_arrow_table()


def _write_named_by_content(table: pa.Table, folder: Path, stem: str) -> str:
    """Writes `<stem>-<content hash>.parquet`; returns its path in the card. `datasets` caches a local folder
    under its name and its data files' names, not their contents: a re-export under fixed names loads stale rows
    from that cache (measured with datasets 5.2), so the names change whenever the data does."""
    path = folder / f"{stem}.parquet"
    pq.write_table(table, path)
    named = path.with_name(f"{stem}-{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}.parquet")
    path.rename(named)
    return f"{folder.name}/{named.name}"


def neuronpedia_ids(sae: str) -> tuple[str, str]:
    model, _, rest = sae.partition("/")
    return model, rest.replace("/", "-")


def export_neuronpedia(store: ResultsStore, sae: str, out: Path) -> Path:
    """Writes `out/<sae folder>/explanations.json` and `activations.json` in Neuronpedia's field names."""
    model_id, layer = neuronpedia_ids(sae)
    explanations, activations = [], []
    index = gather_index(store, sae)
    for page in iter_latent_pages(store, sae, index.latents):
        base = {"modelId": model_id, "layer": layer, "index": str(page.latent)}
        for e in page.data["explanations"]:
            if e["status"] != "ok":
                continue
            own = [s for s in e["scores"] if s["own"]]
            scores = [{"explanationScoreTypeName": f"{s['scorer']}_{metric}", "explanationScoreModelName": s["judge"],
                       "value": s[metric]} for s in own for metric in ("balanced_accuracy", "auc")
                      if s[metric] is not None]
            control = {f"{s['scorer']}_{m}_shuffled": s[m] for s in e["scores"] if not s["own"]
                       for m in ("balanced_accuracy", "auc") if s[m] is not None}
            explanations.append({**base, "description": e["explanation"], "typeName": e["explainer"],
                                 "explanationModelName": e["model"], "scores": scores,
                                 "notes": json.dumps({"shuffled_control": control}) if control else None})
        for x in page.data["examples"]:
            if x["set"] not in ACTIVATING_SETS:
                continue
            values = [v or 0.0 for v in x["activations"]]
            top = max(range(len(values)), key=values.__getitem__) if values else 0
            activations.append({**base, "tokens": x["tokens"], "values": values, "maxValue": max(values, default=0.0),
                                "maxValueTokenIndex": top, "minValue": min(values, default=0.0),
                                "dataIndex": str(x["row"]), "dataSource": f"{x['set']} quantile {x['quantile']}"})
    folder = Path(out) / pages_folder(Path("."), sae).name
    folder.mkdir(parents=True, exist_ok=True)
    for name, records in (("explanations.json", explanations), ("activations.json", activations)):
        with atomic_path(folder / name) as tmp:
            tmp.write_text(json.dumps(records, ensure_ascii=False))
    return folder
