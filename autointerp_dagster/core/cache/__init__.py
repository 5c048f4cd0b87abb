"""The activation cache: written in one streaming pass (`writer`), read by latent range (`reader`), and the
plan of which coders to (re)cache and why (`plan`). The package exports the reader, which loads no model
code (no torch), so sampling and the pages import it cheaply; import `writer` and `plan` by name."""

from .reader import (
    MANIFEST,
    ActivationCache,
    CacheCorruptError,
    CacheMissingError,
    CacheSummary,
    cache_folder,
    read_manifest,
)

__all__ = ["MANIFEST", "ActivationCache", "CacheCorruptError", "CacheMissingError", "CacheSummary", "cache_folder",
           "read_manifest"]
