"""Sparse coder loading and encoding, checked against reference math written here in numpy.

Every coder is written to disk in its family's real file format, loaded through the
public API, and its sparse encoding compared with an independent dense computation.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from safetensors.numpy import save_file

from autointerp_dagster.core.sparse_coders import (
    CoderSource,
    SparseCoderError,
    coder_key,
    detect_format,
    discover_coders,
    load_coder,
    parse_hub_path,
    resolve_local,
    source_fingerprint,
)

D_IN, N_LAT = 16, 40


def rng(seed=0):
    return np.random.default_rng(seed)


def f32(a):
    return np.asarray(a, dtype=np.float32)


def relu(a):
    return np.maximum(a, 0)


def keep_topk(acts: np.ndarray, k: int) -> np.ndarray:
    """Zeroes all but the k largest entries of each row."""
    out = np.zeros_like(acts)
    idx = np.argsort(-acts, axis=1)[:, :k]
    np.put_along_axis(out, idx, np.take_along_axis(acts, idx, axis=1), axis=1)
    return out


def sparse_to_dense(values: torch.Tensor, indices: torch.Tensor, n: int) -> np.ndarray:
    """What the caller keeps: values > 0 at their indices."""
    assert indices.dtype == torch.int64
    assert values.shape == indices.shape
    v, i = values.float().numpy(), indices.numpy()
    out = np.zeros((v.shape[0], n), dtype=np.float32)
    for row in range(v.shape[0]):
        for val, col in zip(v[row], i[row]):
            if val > 0:
                assert out[row, col] == 0, "latent reported twice in one row"
                out[row, col] = val
    return out


def inputs(n=12, d=D_IN, seed=1):
    return f32(rng(seed).normal(size=(n, d)))


def assert_encodes(coder, x: np.ndarray, expected: np.ndarray):
    values, indices = coder.encode_sparse(torch.from_numpy(x))
    got = sparse_to_dense(values, indices, coder.n_latents)
    assert (expected > 0).any(), "reference has no activity; the test would prove nothing"
    np.testing.assert_allclose(got, np.where(expected > 0, expected, 0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        coder.encode_dense(torch.from_numpy(x)).numpy(), expected, rtol=1e-5, atol=1e-5
    )


# ---------------------------------------------------------------- writers


def write_sparsify(folder: Path, *, k=5, activation="topk", transcode=False, seed=0, d_in=D_IN):
    r = rng(seed)
    t = {
        "encoder.weight": f32(r.normal(size=(N_LAT, d_in))),
        "encoder.bias": f32(r.normal(size=N_LAT) * 0.1),
        "W_dec": f32(r.normal(size=(N_LAT, d_in))),
        "b_dec": f32(r.normal(size=d_in)),
    }
    folder.mkdir(parents=True, exist_ok=True)
    save_file(t, str(folder / "sae.safetensors"))
    cfg = {
        "activation": activation, "expansion_factor": 32, "normalize_decoder": True,
        "num_latents": N_LAT, "k": k, "multi_topk": False, "skip_connection": False,
        "transcode": transcode, "d_in": d_in,
    }
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return t


def write_saelens(folder: Path, architecture: str, hook_name="blocks.3.hook_resid_post", seed=0, **extra):
    r = rng(seed)
    t = {
        "W_enc": f32(r.normal(size=(D_IN, N_LAT))),
        "W_dec": f32(r.normal(size=(N_LAT, D_IN))),
        "b_dec": f32(r.normal(size=D_IN)),
    }
    if architecture == "gated":
        t |= {
            "b_gate": f32(r.normal(size=N_LAT)),
            "r_mag": f32(r.normal(size=N_LAT) * 0.3),
            "b_mag": f32(r.normal(size=N_LAT)),
        }
    else:
        t["b_enc"] = f32(r.normal(size=N_LAT) * 0.1)
    if architecture == "jumprelu":
        t["threshold"] = f32(r.uniform(0.5, 2.0, size=N_LAT))
    cfg = {"d_in": D_IN, "d_sae": N_LAT, "hook_name": hook_name, "normalize_activations": "none"}
    if architecture == "legacy-topk":  # older files: no architecture, activation_fn_str
        cfg |= {"activation_fn_str": "topk", "activation_fn_kwargs": {"k": 4}}
    else:
        cfg["architecture"] = architecture
    if architecture == "topk":
        cfg["k"] = 4
    cfg |= extra
    folder.mkdir(parents=True, exist_ok=True)
    save_file(t, str(folder / "sae_weights.safetensors"))
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return t


def write_gemmascope(folder: Path, file="params.npz", lowercase=False, seed=0):
    r = rng(seed)
    t = {
        "W_enc": f32(r.normal(size=(D_IN, N_LAT))),
        "W_dec": f32(r.normal(size=(N_LAT, D_IN))),
        "b_enc": f32(r.normal(size=N_LAT) * 0.1),
        "b_dec": f32(r.normal(size=D_IN)),
        "threshold": f32(r.uniform(0.5, 2.0, size=N_LAT)),
    }
    stored = {k.lower(): v for k, v in t.items()} if lowercase else t
    folder.mkdir(parents=True, exist_ok=True)
    if file.endswith(".npz"):
        np.savez(folder / file, **stored)
    else:
        save_file(stored, str(folder / file))
    return t


def tiny_gemma():
    cfg = transformers.Gemma3TextConfig(
        vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16,
    )
    torch.manual_seed(0)
    return transformers.Gemma3ForCausalLM(cfg).eval()


# ---------------------------------------------------------------- sparsify


def test_sparsify_sae_topk(tmp_path):
    t = write_sparsify(tmp_path / "layers.6", k=5)
    coder = load_coder(CoderSource(str(tmp_path / "layers.6")))
    assert (coder.format, coder.hookpoint, coder.capture_module, coder.capture) == (
        "sparsify", "layers.6", "layers.6", "output")
    assert (coder.d_in, coder.n_latents, coder.is_transcoder) == (D_IN, N_LAT, False)
    x = inputs()
    pre = relu((x - t["b_dec"]) @ t["encoder.weight"].T + t["encoder.bias"])
    assert_encodes(coder, x, keep_topk(pre, 5))
    assert coder.encode_sparse(torch.from_numpy(x))[0].shape == (12, 5)


def test_sparsify_transcoder_reads_module_input_without_centring(tmp_path):
    t = write_sparsify(tmp_path / "layers.1.mlp", k=3, transcode=True)
    coder = load_coder(CoderSource(str(tmp_path / "layers.1.mlp")))
    assert (coder.hookpoint, coder.capture, coder.is_transcoder) == ("layers.1.mlp", "input", True)
    x = inputs()
    pre = relu(x @ t["encoder.weight"].T + t["encoder.bias"])  # b_dec is on the output side
    assert_encodes(coder, x, keep_topk(pre, 3))


def test_sparsify_groupmax(tmp_path):
    t = write_sparsify(tmp_path / "layers.0", k=4, activation="groupmax")
    coder = load_coder(CoderSource(str(tmp_path / "layers.0"), hookpoint="layers.0.custom"))
    assert coder.hookpoint == "layers.0.custom"
    x = inputs()
    pre = relu((x - t["b_dec"]) @ t["encoder.weight"].T + t["encoder.bias"])
    expected = np.zeros_like(pre)
    for g in range(4):  # 4 groups of 10 consecutive latents, one winner each
        block = pre[:, g * 10 : (g + 1) * 10]
        win = block.argmax(axis=1)
        expected[np.arange(len(x)), g * 10 + win] = block.max(axis=1)
    assert_encodes(coder, x, expected)


def test_sparsify_files_written_by_the_sparsify_package(tmp_path):
    sparsify = pytest.importorskip("sparsify")
    torch.manual_seed(0)
    for activation in ("topk", "groupmax"):
        cfg = sparsify.SparseCoderConfig(activation=activation, num_latents=N_LAT, k=4)
        theirs = sparsify.SparseCoder(D_IN, cfg)
        torch.nn.init.normal_(theirs.encoder.bias, std=0.1)
        torch.nn.init.normal_(theirs.b_dec)
        theirs.save_to_disk(tmp_path / activation / "layers.2")
        ours = load_coder(CoderSource(str(tmp_path / activation / "layers.2")))
        x = torch.from_numpy(inputs())
        ref = theirs.encode(x)
        expected = sparse_to_dense(ref.top_acts.detach(), ref.top_indices, N_LAT)
        np.testing.assert_allclose(sparse_to_dense(*ours.encode_sparse(x), N_LAT), expected, atol=1e-5)


# ---------------------------------------------------------------- SAELens


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


# ---------------------------------------------------------------- Gemma Scope


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


# ---------------------------------------------------------------- neurons and models


def test_neurons_read_the_down_projection_input():
    model = tiny_gemma()
    base = model.model
    coder = load_coder(CoderSource("", hookpoint="layers.1.mlp", kind="neurons", k=3), base_model=base)
    assert (coder.capture_module, coder.capture, coder.d_in, coder.n_latents) == (
        "layers.1.mlp.down_proj", "input", 48, 48)
    assert coder.name == "neurons-top3"
    captured = {}
    handle = base.get_submodule(coder.capture_module).register_forward_pre_hook(
        lambda mod, args: captured.setdefault("x", args[0].detach())
    )
    with torch.no_grad():
        model(torch.tensor([[1, 5, 9, 2, 7, 3]]))
    handle.remove()
    x = captured["x"].reshape(-1, 48).numpy()
    assert_encodes(coder, x, keep_topk(relu(x), 3))

    every = load_coder(CoderSource("", hookpoint="layers.1.mlp", kind="neurons"), base_model=base)
    assert every.name == "neurons"
    values, indices = every.encode_sparse(torch.from_numpy(x))
    assert values.shape[1] == int((x > 0).sum(axis=1).max())
    np.testing.assert_allclose(sparse_to_dense(values, indices, 48), relu(x), atol=1e-6)


def test_neurons_errors_name_what_is_missing():
    base = tiny_gemma().model
    with pytest.raises(SparseCoderError, match="base model"):
        load_coder(CoderSource("", hookpoint="layers.1.mlp", kind="neurons"))
    with pytest.raises(SparseCoderError, match="children are: q_proj"):
        load_coder(CoderSource("", hookpoint="layers.1.self_attn", kind="neurons"), base_model=base)


def test_capture_module_must_exist_and_widths_must_match(tmp_path):
    base = tiny_gemma().model
    write_sparsify(tmp_path / "layers.9")
    with pytest.raises(SparseCoderError, match=r"'layers\.9' does not exist.*layers\.0"):
        load_coder(CoderSource(str(tmp_path / "layers.9")), base_model=base)
    write_sparsify(tmp_path / "layers.1")
    coder = load_coder(CoderSource(str(tmp_path / "layers.1")), base_model=base)
    coder.check_width(D_IN, "gemma-3-tiny")
    with pytest.raises(SparseCoderError) as err:
        coder.check_width(32, "gemma-3-tiny")
    assert str(err.value) == (
        f"SAE {tmp_path / 'layers.1'} expects inputs of width 16 at layers.1 "
        "but gemma-3-tiny gives width 32 there"
    )
    with pytest.raises(SparseCoderError, match=r"shape \[n, 16\]"):
        coder.encode_sparse(torch.zeros(2, 32))


def test_dtype_and_device(tmp_path):
    folder = tmp_path / "layers.0"
    t = write_sparsify(folder)
    save_file({k: v.astype(np.float16) for k, v in t.items()}, str(folder / "sae.safetensors"))
    assert load_coder(CoderSource(str(folder))).dtype == torch.float32  # fp32 on CPU by default
    coder = load_coder(CoderSource(str(folder)), dtype=torch.bfloat16)
    assert coder.dtype == torch.bfloat16
    values, indices = coder.encode_sparse(torch.from_numpy(inputs()))  # fp32 input, bf16 compute
    assert values.dtype == torch.bfloat16 and indices.dtype == torch.int64


# ---------------------------------------------------------------- discovery, keys, fingerprints


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


def test_coder_key_validation():
    assert coder_key("gemma-3-270m", "layers.6", None) == "gemma-3-270m/layers.6"
    assert coder_key("gemma-3-270m", "layers.6", "k32") == "gemma-3-270m/layers.6/k32"
    for bad in [("gem ma", "layers.6", None), ("m", "layers|6", None), ("m", "layers.6", "a,b"),
                ("m", "layers.6", "x[0]"), ("m", "layers.6", "tab\there"), ("m", "", None)]:
        with pytest.raises(SparseCoderError):
            coder_key(*bad)


def test_parse_hub_path():
    assert parse_hub_path("hf://org/repo/sub/dir") == ("org/repo", "sub/dir")
    assert parse_hub_path("hf://org/repo") == ("org/repo", None)
    assert parse_hub_path("hf://org/repo/") == ("org/repo", None)
    assert parse_hub_path("/data/saes/layers.6") is None
    assert parse_hub_path("org/repo") is None
    with pytest.raises(SparseCoderError):
        parse_hub_path("hf://repo-without-org")


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
