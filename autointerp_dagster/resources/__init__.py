"""Dagster resources: configuration, subject model, results store."""

from .settings import SettingsResource
from .store import StoreResource
from .subject_model import SubjectModelResource

__all__ = ["SettingsResource", "StoreResource", "SubjectModelResource"]
