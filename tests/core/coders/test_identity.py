"""Coder keys and fingerprints: what keys may contain, and fingerprints that follow file rewrites."""

from __future__ import annotations

import os

import pytest

from autointerp_dagster.core.coders import CoderSource, SparseCoderError, coder_key, source_fingerprint

from .writers import write_sparsify


def test_coder_key_validation():
    assert coder_key("gemma-3-270m", "layers.6", None) == "gemma-3-270m/layers.6"
    assert coder_key("gemma-3-270m", "layers.6", "k32") == "gemma-3-270m/layers.6/k32"
    for bad in [("gem ma", "layers.6", None), ("m", "layers|6", None), ("m", "layers.6", "a,b"),
                ("m", "layers.6", "x[0]"), ("m", "layers.6", "tab\there"), ("m", "", None)]:
        with pytest.raises(SparseCoderError):
            coder_key(*bad)


def test_fingerprint_changes_when_a_file_is_rewritten(tmp_path):
    folder = tmp_path / "layers.6"
    write_sparsify(folder)
    src = CoderSource(str(folder))
    first = source_fingerprint(src)
    assert source_fingerprint(src) == first
    weights = folder / "sae.safetensors"
    stat = weights.stat()
    weights.write_bytes(weights.read_bytes())  # same size and bytes, new mtime
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = source_fingerprint(src)
    assert second != first
    (folder / "cfg.json").write_text((folder / "cfg.json").read_text() + " ")
    assert source_fingerprint(src) != second
    hub = CoderSource("hf://org/repo/layers.6")
    assert source_fingerprint(hub) == "hf://org/repo/layers.6"
