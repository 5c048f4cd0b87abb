"""The coder registry: keys from configured and discovered coders, collisions, vanished coders."""

from __future__ import annotations


import pytest

from autointerp_dagster.core.cache import cache_folder
from autointerp_dagster.core.coders import CoderSource, SparseCoderError, lookup, registered_coders

from ...conftest import write_sparsify_sae


def test_keys_name_model_hookpoint_and_run(project):
    coders = registered_coders(project)
    assert list(coders) == ["tiny/layers.0/run-a", "tiny/layers.1/run-a", "tiny/layers.1/run-b"]
    assert cache_folder(project.cache_dir, "tiny/layers.1/run-a") != cache_folder(project.cache_dir, "tiny/layers.1/run-b")
    assert cache_folder(project.cache_dir, "tiny/layers.1/run-a").parent == project.cache_dir  # flat, never nested


def test_configured_coders_and_collisions(project, tmp_path):
    extra = write_sparsify_sae(tmp_path / "elsewhere" / "layers.2", 64, 32, 2, seed=5)
    with_extra = project.model_copy(update={"saes": (CoderSource(str(extra)),)})
    assert "tiny/layers.2" in registered_coders(with_extra)
    clash = project.model_copy(update={"saes": (CoderSource(str(extra), name="run-a", hookpoint="layers.1"),)})
    with pytest.raises(SparseCoderError, match="would share the key 'tiny/layers.1/run-a'"):
        registered_coders(clash)


def test_vanished_coder_is_a_clear_error(project):
    with pytest.raises(SparseCoderError, match=r"\['tiny/layers.5/gone'\].*Known coders"):
        lookup(project, ["tiny/layers.0/run-a", "tiny/layers.5/gone"])
