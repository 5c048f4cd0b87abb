"""SAELens coders: each architecture's encoding, and TransformerLens hook names mapped onto HF modules."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import save_file

from autointerp_dagster.core.coders import CoderSource, SparseCoderError, load_coder

from .checks import assert_encodes, inputs, keep_topk, relu
from .writers import write_saelens


def saelens_reference(t, architecture, x):
    if architecture == "gated":
        xc = x - t["b_dec"]
        gate = (xc @ t["W_enc"] + t["b_gate"]) > 0
        return relu(xc @ (t["W_enc"] * np.exp(t["r_mag"])) + t["b_mag"]) * gate
    pre = (x - t["b_dec"]) @ t["W_enc"] + t["b_enc"]
    if architecture == "jumprelu":
        return relu(pre) * (pre > t["threshold"])
    if architecture in ("topk", "legacy-topk"):
        return keep_topk(relu(pre), 4)
    return relu(pre)


@pytest.mark.parametrize("architecture", ["standard", "topk", "legacy-topk", "jumprelu", "gated"])
def test_saelens_architectures(tmp_path, architecture):
    t = write_saelens(tmp_path / "sae", architecture)
    coder = load_coder(CoderSource(str(tmp_path / "sae")))
    assert (coder.format, coder.hookpoint, coder.capture) == ("saelens", "layers.3", "output")
    x = inputs() + t["b_dec"]  # centred inputs give a mix of active and silent latents
    assert_encodes(coder, x, saelens_reference(t, architecture, x))


def test_saelens_log_threshold_and_no_input_centring(tmp_path):
    t = write_saelens(tmp_path / "sae", "jumprelu", apply_b_dec_to_input=False)
    weights = dict(t)
    weights["log_threshold"] = np.log(weights.pop("threshold"))
    save_file(weights, str(tmp_path / "sae" / "sae_weights.safetensors"))
    coder = load_coder(CoderSource(str(tmp_path / "sae")))
    x = inputs()
    pre = x @ t["W_enc"] + t["b_enc"]
    assert_encodes(coder, x, relu(pre) * (pre > t["threshold"]))


@pytest.mark.parametrize(
    "hook_name, module, capture",
    [
        ("blocks.2.hook_resid_pre", "layers.2", "input"),
        ("blocks.2.hook_mlp_out", "layers.2.mlp", "output"),
        ("blocks.2.hook_attn_out", "layers.2.self_attn", "output"),
        ("blocks.2.ln2.hook_normalized", "layers.2.mlp", "input"),
    ],
)
def test_saelens_hook_names_map_to_modules(tmp_path, hook_name, module, capture):
    write_saelens(tmp_path / "sae", "standard", hook_name=hook_name)
    coder = load_coder(CoderSource(str(tmp_path / "sae")))
    assert (coder.hookpoint, coder.capture_module, coder.capture) == (module, module, capture)


def test_saelens_transcoder_and_v6_metadata(tmp_path):
    write_saelens(
        tmp_path / "tc", "standard", hook_name=None,
        metadata={"hook_name": "blocks.1.ln2.hook_normalized", "hook_name_out": "blocks.1.hook_mlp_out"},
        apply_b_dec_to_input=False,
    )
    coder = load_coder(CoderSource(str(tmp_path / "tc")))
    assert (coder.hookpoint, coder.capture, coder.is_transcoder) == ("layers.1.mlp", "input", True)


def test_saelens_unmappable_hook_needs_hookpoint(tmp_path):
    write_saelens(tmp_path / "sae", "standard", hook_name="blocks.3.attn.hook_z")
    with pytest.raises(SparseCoderError, match=r"blocks\.3\.attn\.hook_z.*set hookpoint"):
        load_coder(CoderSource(str(tmp_path / "sae")))
    coder = load_coder(CoderSource(str(tmp_path / "sae"), hookpoint="layers.3.self_attn.o_proj"))
    assert (coder.hookpoint, coder.capture) == ("layers.3.self_attn.o_proj", "output")


def test_saelens_neuron_hook_needs_down_projection(tmp_path):
    write_saelens(tmp_path / "sae", "standard", hook_name="blocks.3.mlp.hook_post")
    with pytest.raises(SparseCoderError, match="down_proj"):
        load_coder(CoderSource(str(tmp_path / "sae")))
    coder = load_coder(CoderSource(str(tmp_path / "sae"), hookpoint="layers.3.mlp.down_proj"))
    assert (coder.capture_module, coder.capture) == ("layers.3.mlp.down_proj", "input")


def test_saelens_normalized_activations_are_refused(tmp_path):
    write_saelens(tmp_path / "sae", "standard", normalize_activations="expected_average_only_in")
    with pytest.raises(SparseCoderError, match="not supported yet"):
        load_coder(CoderSource(str(tmp_path / "sae")))
