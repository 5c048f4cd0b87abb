"""sparsify coders: TopK and GroupMax SAEs and transcoders, also as written by the sparsify package itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autointerp_dagster.core.coders import CoderSource, load_coder

from .checks import assert_encodes, inputs, keep_topk, relu, sparse_to_dense
from .writers import D_IN, N_LAT, write_sparsify


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
