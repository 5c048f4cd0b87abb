"""Watched-folder discovery: every coder found once, named so that coders on one hookpoint get distinct keys."""

from __future__ import annotations

import pytest

from autointerp_dagster.core.coders import SparseCoderError, coder_key, discover_coders, load_coder

from .writers import write_gemmascope, write_saelens, write_sparsify


def test_discovery_names_coders_that_share_a_hookpoint(tmp_path):
    write_sparsify(tmp_path / "run-a" / "seed1" / "layers.6", seed=1)
    write_sparsify(tmp_path / "run-b" / "layers.6", seed=2)
    write_sparsify(tmp_path / "layers.0")
    write_gemmascope(tmp_path / "layer_6" / "width_16k" / "average_l0_71")
    write_saelens(tmp_path / "lens" / "res6", "standard", hook_name="blocks.6.hook_resid_post")
    write_sparsify(tmp_path / ".cache" / "layers.1")
    write_sparsify(tmp_path / "incoming.tmp" / "layers.2")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not a coder")

    found = discover_coders(tmp_path)
    assert [(s.hookpoint, s.name) for s in found] == [
        (None, "layer_6-width_16k-average_l0_71"),
        ("layers.0", None),
        (None, "lens-res6"),
        ("layers.6", "run-a-seed1"),
        ("layers.6", "run-b"),
    ]
    assert found == discover_coders(tmp_path)
    keys = []
    for s in found:
        coder = load_coder(s)
        keys.append(coder_key("gemma-3-270m", coder.hookpoint, s.name))
    assert keys == [
        "gemma-3-270m/layers.6/layer_6-width_16k-average_l0_71",
        "gemma-3-270m/layers.0",
        "gemma-3-270m/layers.6/lens-res6",
        "gemma-3-270m/layers.6/run-a-seed1",
        "gemma-3-270m/layers.6/run-b",
    ]


def test_discovery_refuses_colliding_names(tmp_path):
    write_sparsify(tmp_path / "a-b" / "layers.6")
    write_sparsify(tmp_path / "a" / "b" / "layers.6")
    with pytest.raises(SparseCoderError, match="same name 'a-b'"):
        discover_coders(tmp_path)
