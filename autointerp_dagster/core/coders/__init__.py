"""Sparse coders from several families, behind one encoding interface, and the registry of a deployment's coders.

Families: EleutherAI sparsify, SAELens, Gemma Scope, and plain MLP neurons as a baseline
(`formats/`). `locate` finds a coder's files, `load` turns them into a `SparseCoder`,
`identity` and `discovery` name coders without reading their weights, and `registry`
keys every coder of a deployment.
"""

from ..config import CoderSource
from .base import SparseCoder, SparseCoderError
from .decoders import decoder_directions, unit_decoder_directions
from .discovery import discover_coders
from .identity import coder_identity, coder_key, source_fingerprint
from .load import KINDS, load_coder
from .locate import detect_format, parse_hub_path, resolve_local
from .registry import CoderSettings, RegisteredCoder, lookup, registered_coders

__all__ = [
    "KINDS",
    "CoderSettings",
    "CoderSource",
    "RegisteredCoder",
    "SparseCoder",
    "SparseCoderError",
    "coder_identity",
    "coder_key",
    "decoder_directions",
    "unit_decoder_directions",
    "detect_format",
    "discover_coders",
    "load_coder",
    "lookup",
    "parse_hub_path",
    "registered_coders",
    "resolve_local",
    "source_fingerprint",
]
