"""Locating coders: formats told apart by their files, Hub paths parsed and downloaded."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import save_file

from autointerp_dagster.core.coders import (
    CoderSource,
    SparseCoderError,
    detect_format,
    load_coder,
    parse_hub_path,
    resolve_local,
)

from .checks import assert_encodes, inputs
from .writers import f32, write_gemmascope, write_saelens, write_sparsify


def test_detect_format_explains_what_it_needs(tmp_path):
    write_sparsify(tmp_path / "sp")
    write_saelens(tmp_path / "sl", "standard")
    write_gemmascope(tmp_path / "gs", file="params.safetensors")
    assert [detect_format(tmp_path / n) for n in ("sp", "sl", "gs")] == ["sparsify", "saelens", "gemmascope"]
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "cfg.json").write_text("{}")
    expected = r"found: cfg\.json.*sae\.safetensors.*sae_weights.*params\.npz"
    with pytest.raises(SparseCoderError, match=expected):
        detect_format(tmp_path / "half")
    with pytest.raises(SparseCoderError, match="is a file"):
        detect_format(tmp_path / "half" / "cfg.json")
    with pytest.raises(SparseCoderError, match="does not exist"):
        load_coder(CoderSource(str(tmp_path / "missing")))
    with pytest.raises(SparseCoderError, match="lacks tensor"):
        save_file({"encoder.weight": f32(np.ones((4, 2)))}, str(tmp_path / "sp" / "sae.safetensors"))
        load_coder(CoderSource(str(tmp_path / "sp")))


def test_parse_hub_path():
    assert parse_hub_path("hf://org/repo/sub/dir") == ("org/repo", "sub/dir")
    assert parse_hub_path("hf://org/repo") == ("org/repo", None)
    assert parse_hub_path("hf://org/repo/") == ("org/repo", None)
    assert parse_hub_path("/data/saes/layers.6") is None
    assert parse_hub_path("org/repo") is None
    with pytest.raises(SparseCoderError):
        parse_hub_path("hf://repo-without-org")


def test_hub_paths_download_the_subfolder(tmp_path, monkeypatch):
    import huggingface_hub

    repo = tmp_path / "snapshot"
    t = write_gemmascope(repo / "layer_2" / "width_16k" / "average_l0_30")
    calls = []

    def snapshot_download(repo_id, allow_patterns=None, **kw):
        calls.append((repo_id, allow_patterns))
        return str(repo)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    src = CoderSource("hf://google/gemma-scope-2b-pt-mlp/layer_2/width_16k/average_l0_30")
    assert resolve_local(src) == repo / "layer_2" / "width_16k" / "average_l0_30"
    coder = load_coder(src)
    assert calls[-1] == ("google/gemma-scope-2b-pt-mlp", "layer_2/width_16k/average_l0_30/*")
    assert (coder.hookpoint, coder.capture) == ("layers.2.mlp", "output")
    x = inputs() * 3
    pre = x @ t["W_enc"] + t["b_enc"]
    assert_encodes(coder, x, pre * (pre > t["threshold"]))
    with pytest.raises(SparseCoderError, match="no folder"):
        resolve_local(CoderSource("hf://google/gemma-scope-2b-pt-mlp/layer_9"))
