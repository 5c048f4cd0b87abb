"""Examples as flat rows for a DuckDB table, and back: what later stages read instead of sampling again."""

from __future__ import annotations

from collections.abc import Iterable

from .build import ExampleSets
from .examples import (
    ACTIVATING,
    HARD_NEGATIVE,
    NEIGHBOUR_NEGATIVE,
    RANDOM_NEGATIVE,
    Example,
)

# Row `set` value -> (ExampleSets attribute, Example.kind). "hard_negative" is the scorers' share, the
# name judgments.example_set records; "hard_negative_train" is only ever shown to a contrastive explainer.
# Likewise "neighbour" (judged) and "neighbour_train" (explainer only).
SETS = {
    "train": ("train", ACTIVATING),
    "test": ("test", ACTIVATING),
    "random": ("random_negatives", RANDOM_NEGATIVE),
    "hard_negative_train": ("hard_negative_train", HARD_NEGATIVE),
    "hard_negative": ("hard_negative_test", HARD_NEGATIVE),
    "neighbour_train": ("neighbour_train", NEIGHBOUR_NEGATIVE),
    "neighbour": ("neighbour_test", NEIGHBOUR_NEGATIVE),
    "select": ("select", ACTIVATING),
    "select_random": ("select_random", RANDOM_NEGATIVE),
}



def examples_to_rows(sae_key: str, latent_examples: Iterable[ExampleSets]) -> list[dict]:
    """Flat rows of the `examples` table (store/tables.EXAMPLES); skipped latents give none."""
    rows = []
    for sets in latent_examples:
        for set_name, (attribute, _kind) in SETS.items():
            for idx, example in enumerate(getattr(sets, attribute)):
                rows.append({
                    "sae": sae_key, "latent": sets.latent, "set": set_name, "idx": idx,
                    "row": example.row, "start": example.start, "quantile": example.quantile,
                    "tokens": list(example.tokens), "activations": list(example.activations),
                    "normalized": list(example.normalized),
                })
    return rows


def rows_to_latent_examples(rows: Iterable[dict]) -> dict[int, ExampleSets]:
    """The inverse of `examples_to_rows` for the rows of one SAE: example sets by latent, in stored order.

    Raises LeakageError for a latent whose stored explainer and scorer sets share a window.
    """
    rows = sorted(rows, key=lambda r: (r["latent"], r["set"], r["idx"]))
    if len({r["sae"] for r in rows}) > 1:
        raise ValueError("rows_to_latent_examples takes the rows of one SAE at a time")
    out: dict[int, ExampleSets] = {}
    for r in rows:
        attribute, kind = SETS[r["set"]]
        sets = out.setdefault(r["latent"], ExampleSets(r["latent"]))
        getattr(sets, attribute).append(Example(
            tokens=tuple(r["tokens"]), activations=tuple(float(a) for a in r["activations"]),
            normalized=tuple(int(v) for v in r["normalized"]), kind=kind, row=r["row"], start=r["start"],
            quantile=r["quantile"],
        ))
    for sets in out.values():
        sets.check_disjoint()
    return out
