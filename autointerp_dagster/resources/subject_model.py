"""The subject model as a Dagster resource: loaded once per process, on the configured device and dtype."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from dagster import ConfigurableResource

from ..core.models.loading import load_tokenizer
from ..core.models.subject import SubjectModel, load_subject_model
from .settings import SettingsResource


class SubjectModelResource(ConfigurableResource):
    """`model`, `device` and `dtype` come from the settings."""

    settings: SettingsResource

    def load(self) -> SubjectModel:
        config = self.settings.get()
        return _load(config.model.name, config.models_dir, config.model.device, config.model.dtype)

    def tokenizer(self):
        """The tokenizer alone, without loading the weights."""
        config = self.settings.get()
        return _load_tokenizer(config.model.name, config.models_dir)


@cache
def _load_tokenizer(spec: str, models_dir: Path):
    return load_tokenizer(spec, models_dir)


@cache
def _load(spec: str, models_dir: Path, device: str, dtype: str) -> SubjectModel:
    return load_subject_model(spec, models_dir, device=device, dtype=dtype)
