"""Loading the settings tree, validated at load, and showing it.

Sources, later ones winning: the defaults (`sections`; they run the embedded default offline), the YAML
file named by `AUTOINTERP_CONFIG`, then `AUTOINTERP_*` environment variables, one per leaf setting,
named by its path (`llm.base_url` -> `AUTOINTERP_LLM_BASE_URL`, `corpus.token_budget` ->
`AUTOINTERP_CORPUS_TOKEN_BUDGET`). A misspelt key or variable, or a wrong value, fails at load with
the key's name and what it accepts. Secrets are never settings: `llm.api_key_env` names the
variable that holds the key.
"""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import UserError
from .renames import RENAMED, new_path, rename_tree, say
from .runtime import LLMConfig
from .sections import Section
from .settings import Settings

ENV_PREFIX = "AUTOINTERP_"
CONFIG_ENV = "AUTOINTERP_CONFIG"


class ConfigError(UserError, ValueError):
    """A configuration that cannot be used: the message names the key and what it accepts."""




def _leaves(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every leaf setting's path and field; a section that may be null is a leaf too (set it to null)."""
    for name, field in model.model_fields.items():
        path = prefix + (name,)
        section = _section_type(field.annotation)
        if section is not None:
            yield from _leaves(section, path)
        else:
            yield path, field


def _section_type(annotation: Any) -> type[BaseModel] | None:
    """The Section class of a field typed `SomeSection` or `SomeSection | None` (not a tuple of sections: a list
    setting, like `llm.base_urls`)."""
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    candidates = [annotation, *(typing.get_args(annotation) if union else ())]
    return next((c for c in candidates if isinstance(c, type) and issubclass(c, Section)), None)


def env_names() -> dict[str, tuple[str, ...]]:
    """`AUTOINTERP_*` variable -> setting path, for every leaf setting."""
    names = {ENV_PREFIX + "_".join(path).upper(): path for path, _ in _leaves(Settings)}
    assert len(names) == len(list(_leaves(Settings))), "two settings map to one environment variable"
    return names


def _env_value(raw: str) -> Any:
    """An environment string as YAML would read a scalar, lists and mappings (`null`, `[a, b]`, `{k: v}`)."""
    text = raw.strip()
    if text.lower() in ("null", "none", "~"):
        return None
    if text[:1] in "[{":
        return yaml.safe_load(text)
    return raw


def _set(tree: dict, path: tuple[str, ...], value: Any) -> None:
    for name in path[:-1]:
        node = tree.get(name)
        if not isinstance(node, dict):  # absent, or a null section that this variable now fills in
            node = tree[name] = {}
        tree = node
    tree[path[-1]] = value


def _flatten(tree: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _flatten(value, prefix + (str(key),))
    else:
        yield prefix


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"the settings file {path} does not exist (from --config or {CONFIG_ENV})")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(values).__name__}")
    return values


def _error_message(exc: ValidationError, sources: Mapping[str, str]) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"])
        where = next((s for k, s in sources.items() if key == k or key.startswith(k + ".") or k.startswith(key + ".")),
                     None)
        line = f"  {key}: {error['msg']}"
        if error["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            parent = _parent_model(tuple(str(p) for p in error["loc"][:-1]))
            if parent is not None:
                allowed = sorted(parent.model_fields)
                close = difflib.get_close_matches(str(error["loc"][-1]), allowed, n=1)
                line += (f" (did you mean {close[0]!r}?)" if close else "") + f"; allowed: {', '.join(allowed)}"
        elif "input" in error and not isinstance(error["input"], dict):
            line += f" (got {error['input']!r})"
        lines.append(line + (f" [from {where}]" if where else ""))
    return "invalid configuration:\n" + "\n".join(lines)


def _parent_model(path: tuple[str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = Settings
    for name in path:
        field = model.model_fields.get(name) if model else None
        model = _section_type(field.annotation) if field else None
    return model


def load_settings_with_sources(config_path: str | Path | None = None, environ: Mapping[str, str] | None = None,
                               overrides: Mapping[str, Any] | None = None) -> tuple[Settings, dict[str, str]]:
    """The validated settings and, for each setting that is not a default, where its value came from.

    Precedence: defaults < the YAML file (`config_path`, else `AUTOINTERP_CONFIG`) < `AUTOINTERP_*`
    variables < `overrides` (dotted keys, for tests and notebooks).
    """
    env = os.environ if environ is None else environ
    tree: dict = {}
    sources: dict[str, str] = {}
    path = config_path or env.get(CONFIG_ENV)
    if path:
        path = Path(path).expanduser()
        tree = rename_tree(_read_yaml(path), f"file {path}")
        sources.update({".".join(p): f"file {path}" for p in _flatten(tree)})
    known = env_names()
    api_key_env = (tree.get("llm") or {}).get("api_key_env") if isinstance(tree.get("llm"), dict) else None
    api_key_env = env.get(ENV_PREFIX + "LLM_API_KEY_ENV") or api_key_env or LLMConfig().api_key_env
    for name, raw in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or name in (CONFIG_ENV, api_key_env):
            continue
        target = known.get(name) or _old_variable(name, raw)
        if target is None:
            close = difflib.get_close_matches(name, list(known), n=1)
            raise ConfigError(f"unknown setting variable {name}" + (f"; did you mean {close[0]}?" if close else "")
                              + " (run `autointerp config --variables` for the list)")
        _set(tree, target, _env_value(raw))
        sources[".".join(target)] = f"env {name}"
    for dotted, value in (overrides or {}).items():
        path = tuple(dotted.split("."))
        if (moved := new_path(path, value)) is not None:
            say(dotted, ".".join(moved), "override")
            path = moved
        _set(tree, path, value)
        sources[".".join(path)] = "override"
    try:
        return Settings.model_validate(tree), sources
    except ValidationError as exc:
        raise ConfigError(_error_message(exc, sources)) from None


def _old_variable(name: str, raw: str) -> tuple[str, ...] | None:
    """The new path of a variable named after an old setting or a field under one (AUTOINTERP_SAES ->
    coders.paths, AUTOINTERP_EMBEDDED_SAES_K -> coders.embedded.k), saying so."""
    known = env_names()
    for old, new in RENAMED.items():
        prefix = ENV_PREFIX + "_".join(old).upper()
        if name == prefix and (moved := new_path(old, raw)) is not None:
            variable = ENV_PREFIX + "_".join(moved).upper()
        elif name.startswith(prefix + "_"):
            variable = ENV_PREFIX + "_".join(new).upper() + name[len(prefix):]
            moved = known.get(variable)
        else:
            continue
        if moved is not None:
            say(name, f"{'.'.join(moved)} (variable {variable})", "environment")
            return moved
    return None


def load_settings(config_path: str | Path | None = None, environ: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> Settings:
    """The validated settings (see `load_settings_with_sources` for the precedence)."""
    return load_settings_with_sources(config_path, environ, overrides)[0]


def describe(settings: Settings, sources: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(setting, value, source) for every leaf setting, for `autointerp config`: the values that run, those that
    followed from others with the reason. No value here is a secret: the API key itself is never a setting;
    whether its variable is set is reported instead."""
    rows = []
    dumped = settings.model_dump(mode="json")
    for path, _ in _leaves(Settings):
        node: Any = dumped
        for name in path:
            node = node.get(name) if isinstance(node, dict) else None
        dotted = ".".join(path)
        source = next((s for k, s in sources.items() if dotted == k or dotted.startswith(k + ".")), "default")
        if dotted in settings.resolved:
            source = settings.resolved[dotted]
        rows.append((dotted, _show(node), source))
    key_set = bool(os.environ.get(settings.llm.api_key_env))
    rows.append((f"(secret) ${settings.llm.api_key_env}", "set, redacted" if key_set else "not set", "env"))
    return rows


def _show(value: Any) -> str:
    """A value as one line of YAML flow style (`null`, `[layers.6, layers.7]`, `{a: 1}`)."""
    value = str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) else value
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def reference_rows() -> list[tuple[str, str, str, str]]:
    """(YAML key, environment variable, default, description) of every leaf setting: the README's table."""
    rows = []
    defaults = Settings.model_construct().model_dump(mode="json")  # unvalidated: `home` stays relative
    for path, field in _leaves(Settings):
        node: Any = defaults
        for name in path:
            node = node.get(name) if isinstance(node, dict) else None
        rows.append((".".join(path), ENV_PREFIX + "_".join(path).upper(), _show(node), field.description or ""))
    return rows
