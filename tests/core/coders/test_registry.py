"""The coder registry: keys from configured and discovered coders, collisions, vanished coders."""

from __future__ import annotations

import pytest

from autointerp_dagster.core.cache import cache_folder
from autointerp_dagster.core.coders import CoderSource, SparseCoderError, lookup, registered_coders

from ...conftest import write_sparsify_sae


def test_keys_name_model_hookpoint_and_run(project):
    coders = registered_coders(project)
    assert list(coders) == ["tiny/layers.0/run-a", "tiny/layers.1/run-a", "tiny/layers.1/run-b"]
    run_a, run_b = (cache_folder(project.cache_dir, f"tiny/layers.1/{run}") for run in ("run-a", "run-b"))
    assert run_a != run_b
    assert cache_folder(project.cache_dir, "tiny/layers.1/run-a").parent == project.cache_dir  # flat, never nested


def test_configured_coders_and_collisions(project, tmp_path):
    extra = write_sparsify_sae(tmp_path / "elsewhere" / "layers.2", 64, 32, 2, seed=5)
    coders = project.coders.model_copy(update={"paths": (CoderSource(str(extra)),)})
    with_extra = project.model_copy(update={"coders": coders})
    assert "tiny/layers.2" in registered_coders(with_extra)
    clashing = (CoderSource(str(extra), name="run-a", hookpoint="layers.1"),)
    clash = project.model_copy(update={"coders": project.coders.model_copy(update={"paths": clashing})})
    with pytest.raises(SparseCoderError, match="would share the key 'tiny/layers.1/run-a'"):
        registered_coders(clash)


def test_vanished_coder_is_a_clear_error(project):
    with pytest.raises(SparseCoderError, match=r"\['tiny/layers.5/gone'\].*Known coders"):
        lookup(project, ["tiny/layers.0/run-a", "tiny/layers.5/gone"])
