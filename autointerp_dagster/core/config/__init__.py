"""The one typed configuration tree: its sections (`sections`, and where the work runs: `runtime`), the root and
its resolved values (`settings`), old names that still work (`renames`), and how it is loaded and shown (`load`).

This package imports nothing else of the project but `core.errors`, so every stage can import its section here.
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
from .runtime import ConcurrencyConfig, ExecutorConfig, InstanceConfig, LLMConfig, Price, StoreConfig
from .sections import (
    EMBEDDED_CORPUS,
    EMBEDDED_JUDGE,
    EMBEDDED_MODEL,
    HIGHLIGHT_THRESHOLD,
    BaselineConfig,
    CacheConfig,
    ChecksConfig,
    CodersConfig,
    CoderSource,
    CorpusSpec,
    EmbeddedSaeSpec,
    ExplainerConfig,
    IntruderConfig,
    ModelSpec,
    SamplingConfig,
    ScorerConfig,
    Section,
    SimulationConfig,
    SteeringConfig,
    SubjectScorersConfig,
)
from .settings import LOCAL_EXPLAINER, Settings

__all__ = [
    "CONFIG_ENV", "ENV_PREFIX", "EMBEDDED_CORPUS", "EMBEDDED_JUDGE", "EMBEDDED_MODEL", "HIGHLIGHT_THRESHOLD",
    "LOCAL_EXPLAINER", "BaselineConfig", "CacheConfig", "ChecksConfig", "CodersConfig", "CoderSource",
    "ConcurrencyConfig", "ConfigError", "CorpusSpec", "EmbeddedSaeSpec", "ExecutorConfig", "ExplainerConfig",
    "InstanceConfig", "IntruderConfig", "LLMConfig", "ModelSpec", "Price", "SamplingConfig", "ScorerConfig",
    "Section", "Settings", "SimulationConfig", "SteeringConfig", "StoreConfig", "SubjectScorersConfig", "describe",
    "env_names", "load_settings", "load_settings_with_sources", "reference_rows",
]
