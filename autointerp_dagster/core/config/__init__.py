"""The one typed configuration tree (`sections`) and how it is loaded and shown (`load`).

This package imports nothing else of the project, so every stage can import its section from here.
"""

from .load import (
    CONFIG_ENV,
    ENV_PREFIX,
    ConfigError,
    describe,
    env_names,
    load_settings,
    load_settings_with_sources,
    reference_rows,
)
from .sections import (
    EMBEDDED_CORPUS,
    EMBEDDED_JUDGE,
    EMBEDDED_MODEL,
    HIGHLIGHT_THRESHOLD,
    LOCAL_EXPLAINER,
    CoderSource,
    ConcurrencyConfig,
    CorpusSpec,
    EmbeddedSaeSpec,
    ExplainerConfig,
    InstanceConfig,
    LLMConfig,
    SamplingConfig,
    ScorerConfig,
    Section,
    SimulationConfig,
    Settings,
    SubjectScorersConfig,
)

__all__ = [
    "CONFIG_ENV", "ENV_PREFIX", "EMBEDDED_CORPUS", "EMBEDDED_JUDGE", "EMBEDDED_MODEL", "HIGHLIGHT_THRESHOLD",
    "LOCAL_EXPLAINER", "CoderSource", "ConcurrencyConfig", "ConfigError", "CorpusSpec", "EmbeddedSaeSpec",
    "ExplainerConfig", "InstanceConfig", "LLMConfig", "SamplingConfig", "ScorerConfig", "Section", "Settings", "SimulationConfig",
    "SubjectScorersConfig", "describe",
    "env_names", "load_settings", "load_settings_with_sources", "reference_rows",
]
