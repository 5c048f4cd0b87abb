"""The subject model as a Dagster resource: loaded once per process, on CUDA when present."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from dagster import ConfigurableResource

from ..core.settings import Settings
from ..core.hf_models import load_tokenizer
from ..core.subject_model import SubjectModel, load_subject_model


class SubjectModelResource(ConfigurableResource):
    """`device`: auto (CUDA if present, else CPU), cuda, cuda:1, cpu. `dtype`: auto (fp32 on CPU, bf16 on CUDA) or a torch dtype name."""

    device: str = "auto"
    dtype: str = "auto"

    def load(self, settings: Settings) -> SubjectModel:
        return _load(settings.model, settings.models_dir, self.device, self.dtype)

    def tokenizer(self, settings: Settings):
        """The tokenizer alone, without loading the weights."""
        return _load_tokenizer(settings.model, settings.models_dir)


@cache
def _load_tokenizer(spec: str, models_dir: Path):
    return load_tokenizer(spec, models_dir)


@cache
def _load(spec: str, models_dir: Path, device: str, dtype: str) -> SubjectModel:
    return load_subject_model(spec, models_dir, device=device, dtype=dtype)
