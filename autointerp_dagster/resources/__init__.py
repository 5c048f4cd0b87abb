"""Dagster resources: configuration, subject model, results store, LLM."""

from .llm import LLMResource
from .settings import SettingsResource
from .store import StoreResource
from .subject_model import SubjectModelResource

__all__ = ["LLMResource", "SettingsResource", "StoreResource", "SubjectModelResource"]
