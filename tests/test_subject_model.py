"""The subject model: loading from a folder, hookpoint validation, captures, early stopping."""

from __future__ import annotations

import pytest
import torch

from autointerp_dagster.core.models.subject import HookpointError, load_subject_model


@pytest.fixture(scope="module")
def model(tiny_model_dir, tmp_path_factory):
    return load_subject_model(str(tiny_model_dir), tmp_path_factory.mktemp("models"))


def test_loads_fp32_on_cpu_and_resolves_names(model):
    assert model.dtype == torch.float32 and model.device.type == "cpu"
    assert model.module("layers.1") is model.module("model.layers.1")


def test_unknown_hookpoint_lists_valid_names(model):
    with pytest.raises(HookpointError) as info:
        model.module("layers.9")
    message = str(info.value)
    assert "layers.N  (N in 0..2)" in message and "layers.N.mlp  (N in 0..2)" in message


def test_captures_match_hidden_states(model):
    ids = torch.tensor([[model.bos_token_id, 5, 17, 42, 99]])
    captured = model.capture(ids, [("layers.0", "output"), ("layers.1", "output"), ("layers.1.mlp", "input")])
    with torch.no_grad():
        hidden = model.body(input_ids=ids, output_hidden_states=True).hidden_states
    torch.testing.assert_close(captured[("layers.0", "output")], hidden[1])
    torch.testing.assert_close(captured[("layers.1", "output")], hidden[2])
    assert captured[("layers.1.mlp", "input")].shape == (1, 5, 64)


def test_forward_stops_after_deepest_capture(model):
    calls = []
    handle = model.module("layers.2").register_forward_hook(lambda *_: calls.append("layers.2"))
    try:
        model.capture(torch.tensor([[1, 2, 3]]), [("layers.1", "output"), ("layers.0", "output")])
        assert calls == []  # the last layer never ran
        model.capture(torch.tensor([[1, 2, 3]]), [("layers.2", "output")])
        assert calls == ["layers.2"]
    finally:
        handle.remove()


def test_widths_probe(model):
    widths = model.widths([("layers.0", "output"), ("layers.0.mlp.down_proj", "input")])
    assert widths == {("layers.0", "output"): 64, ("layers.0.mlp.down_proj", "input"): 96}


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="GGUF model file"):
        load_subject_model(str(tmp_path / "absent.gguf"), tmp_path)
