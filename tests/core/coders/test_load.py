"""Loading onto a model: capture modules must exist, widths must match, and dtypes follow the device."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from autointerp_dagster.core.coders import CoderSource, SparseCoderError, load_coder

from .checks import inputs, tiny_gemma
from .writers import D_IN, write_sparsify


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
