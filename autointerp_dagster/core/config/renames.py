"""Settings that moved: their old names keep working, each with a message naming the new one.

The settings root used to mix sections with loose fields; every field now lives in a section. A file,
variable or override that uses an old name is read as the new one, and a warning (logger
`autointerp_dagster.core.config`, so in the console and the runs' logs) says what to write instead.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

RENAMED: dict[tuple[str, ...], tuple[str, ...]] = {
    ("model",): ("model", "name"),  # when it holds a string: `model:` is a section now
    ("model_alias",): ("model", "alias"),
    ("device",): ("model", "device"),
    ("dtype",): ("model", "dtype"),
    ("saes",): ("coders", "paths"),
    ("sae_dir",): ("coders", "watch_dir"),
    ("embedded_saes",): ("coders", "embedded"),
    ("latent_ranges",): ("coders", "latent_ranges"),
    ("cache_batch_rows",): ("cache", "batch_rows"),
    ("cache_flush_records",): ("cache", "flush_records"),
    ("latents_per_range",): ("sampling", "latents_per_range"),
    ("negatives",): ("sampling", "negatives"),
    ("explainer_examples",): ("explainer", "examples"),
    ("judge_examples",): ("scoring", "examples_per_class"),
    ("baseline_tokens",): ("baseline", "tokens"),
    ("baseline_judged_by",): ("baseline", "judged_by"),
    ("max_parse_failure_rate",): ("checks", "max_parse_failure_rate"),
    ("explainer", "steering_kl_target"): ("steering", "kl_target"),
    ("subject_scorers", "kl_target"): ("steering", "kl_target"),
    ("subject_scorers", "kl_tolerance"): ("steering", "kl_tolerance"),
    ("subject_scorers", "search_steps"): ("steering", "search_steps"),
    ("subject_scorers", "promoted_tokens"): ("subject_scorers", "kept_tokens"),
}
_said: set[str] = set()


def new_path(path: tuple[str, ...], value: Any = None) -> tuple[str, ...] | None:
    """The new name of an old setting path (None when `path` is not an old name)."""
    if path[0] == "model" and (len(path) > 1 or isinstance(value, dict)):
        return None  # the `model` section's own fields; only a string `model` is the old setting
    for old, new in RENAMED.items():
        if path[: len(old)] == old:
            return new + path[len(old):]
    return None


def rename_tree(tree: dict, source: str) -> dict:
    """`tree` with every old name moved to its new place (warning once per name and source)."""
    moved: dict = {}
    for key, value in tree.items():
        if isinstance(value, dict) and new_path((key,), value) is None:
            for sub, subvalue in value.items():
                target = new_path((key, sub), subvalue)
                _put(moved, target or (key, sub), subvalue)
                if target:
                    say(f"{key}.{sub}", ".".join(target), source)
            continue
        target = new_path((key,), value)
        _put(moved, target or (key,), value)
        if target:
            say(key, ".".join(target), source)
    return moved


def say(old: str, new: str, source: str) -> None:
    message = f"setting `{old}` ({source}) is now `{new}`; the old name still works"
    if message not in _said:
        _said.add(message)
        log.warning(message)


def _put(tree: dict, path: tuple[str, ...], value: Any) -> None:
    for name in path[:-1]:
        tree = tree.setdefault(name, {})
    if isinstance(value, dict) and isinstance(tree.get(path[-1]), dict):
        tree[path[-1]].update(value)
    else:
        tree[path[-1]] = value
