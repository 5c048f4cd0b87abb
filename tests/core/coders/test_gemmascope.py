"""Gemma Scope coders: JumpReLU encoding from .npz or .safetensors, and the capture site read off the path."""

from __future__ import annotations

import pytest

from autointerp_dagster.core.coders import CoderSource, SparseCoderError, load_coder

from .checks import assert_encodes, inputs
from .writers import D_IN, write_gemmascope


@pytest.mark.parametrize(
    "file, lowercase", [("params.npz", False), ("params.safetensors", True)]
)
def test_gemmascope_jumprelu(tmp_path, file, lowercase):
    folder = tmp_path / "gemma-scope-2b-pt-res" / "layer_5" / "width_16k" / "average_l0_71"
    t = write_gemmascope(folder, file=file, lowercase=lowercase)
    coder = load_coder(CoderSource(str(folder)))
    assert (coder.format, coder.hookpoint, coder.capture, coder.is_transcoder) == (
        "gemmascope", "layers.5", "output", False)
    x = inputs() * 3
    pre = x @ t["W_enc"] + t["b_enc"]
    assert_encodes(coder, x, pre * (pre > t["threshold"]))


@pytest.mark.parametrize(
    "rel, hookpoint, capture, transcoder",
    [
        ("gemma-scope-2b-pt-mlp/layer_3/width_16k/average_l0_9", "layers.3.mlp", "output", False),
        ("gemma-scope-2b-pt-att/layer_3/width_16k/average_l0_9", "layers.3.self_attn", "output", False),
        ("gemma-scope-2b-pt-transcoders/layer_3/width_16k/average_l0_9", "layers.3.mlp", "input", True),
        ("mlp_experiments/gemma-scope-2-270m-pt/resid_post_all/layer_7_width_16k_l0_small",
         "layers.7", "output", False),
        ("gemma-scope-2-270m-pt/attn_out_all/layer_4_width_16k_l0_big",
         "layers.4.self_attn", "output", False),
    ],
)
def test_gemmascope_site_from_path(tmp_path, rel, hookpoint, capture, transcoder):
    write_gemmascope(tmp_path / rel, file="params.safetensors")
    coder = load_coder(CoderSource(str(tmp_path / rel)))
    assert (coder.hookpoint, coder.capture_module, coder.capture, coder.is_transcoder) == (
        hookpoint, hookpoint, capture, transcoder)


def test_gemmascope_params_file_and_unknown_layer(tmp_path):
    write_gemmascope(tmp_path / "saes" / "some_sae")
    file = tmp_path / "saes" / "some_sae" / "params.npz"
    with pytest.raises(SparseCoderError, match="set hookpoint"):
        load_coder(CoderSource(str(file)))
    coder = load_coder(CoderSource(str(file), hookpoint="layers.0"))
    assert (coder.hookpoint, coder.d_in) == ("layers.0", D_IN)
