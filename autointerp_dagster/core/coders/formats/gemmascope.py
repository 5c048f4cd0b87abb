"""Gemma Scope JumpReLU SAEs and transcoders: a params file whose site is read off its path."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from ...config import CoderSource
from ..base import SparseCoder, SparseCoderError, topk_of_positive
from .files import read_tensors

GEMMASCOPE_FILES = ("params.npz", "params.safetensors")


class GemmaScopeCoder(SparseCoder):
    """Gemma Scope JumpReLU SAE or transcoder (no input centring)."""

    format = "gemmascope"

    def __init__(self, *, W_enc, b_enc, threshold, **kw):
        super().__init__(**kw)
        self.register_buffer("W_enc", W_enc)
        self.register_buffer("b_enc", b_enc)
        self.register_buffer("threshold", threshold)

    def _sparse(self, x):
        pre = x @ self.W_enc + self.b_enc
        return topk_of_positive(pre * (pre > self.threshold))


_LAYER_PART = re.compile(r"layer_(\d+)(?:_|$)")
_ATTN_PART = re.compile(r"(?:^|[-_])attn?(?:$|[-_])")
_RESID_PART = re.compile(r"(?:^|[-_])res(?:id)?(?:$|[-_])")


def _site_of_path(path: str) -> tuple[int | None, str | None]:
    """(layer, kind) from path components such as gemma-scope-2b-pt-mlp/layer_6 or
    resid_post_all/layer_6_width_16k_l0_big; the deepest component that names a kind wins."""
    parts = [p.lower() for p in re.split(r"[/\\]+", path) if p]
    layer = kind = None
    for part in reversed(parts):
        m = _LAYER_PART.match(part)
        if layer is None and m:
            layer = int(m.group(1))
        if kind is None:
            if "transcoder" in part:
                kind = "transcoder"
            elif _ATTN_PART.search(part):
                kind = "attn"
            elif "mlp" in part:
                kind = "mlp"
            elif _RESID_PART.search(part):
                kind = "resid"
    return layer, kind


def gemmascope_site(source: CoderSource) -> tuple[str, str, bool]:
    """(hookpoint, capture side, is transcoder) of a Gemma Scope coder, from the source or its path."""
    layer, kind = _site_of_path(source.path)
    is_transcoder = kind == "transcoder"
    if source.hookpoint:
        hookpoint, capture = source.hookpoint, "input" if is_transcoder else "output"
    elif layer is None:
        raise SparseCoderError(
            f"{source.path}: cannot tell which layer this Gemma Scope coder reads (no layer_N folder in "
            "its path); set hookpoint, e.g. layers.6 (residual) or layers.6.mlp"
        )
    else:
        hookpoint, capture = {
            "transcoder": (f"layers.{layer}.mlp", "input"),
            "mlp": (f"layers.{layer}.mlp", "output"),
            "attn": (f"layers.{layer}.self_attn", "output"),
        }.get(kind, (f"layers.{layer}", "output"))
    return hookpoint, capture, is_transcoder


def _expect_shape(path, what: str, tensor: torch.Tensor, shape: tuple[int, ...]) -> None:
    if tuple(tensor.shape) != shape:
        raise SparseCoderError(f"{path}: {what} has shape {list(tensor.shape)}, expected {list(shape)}")


def load_gemmascope(source: CoderSource, local: Path) -> GemmaScopeCoder:
    candidates = [local] if local.is_file() else [local / f for f in GEMMASCOPE_FILES]
    file = next((f for f in candidates if f.exists()), None)
    if file is None:
        raise SparseCoderError(f"{local} holds neither {' nor '.join(GEMMASCOPE_FILES)}")
    t = read_tensors(file, ["W_enc", "b_enc", "threshold"])
    d_in, n_latents = t["W_enc"].shape
    _expect_shape(file, "b_enc", t["b_enc"], (n_latents,))
    _expect_shape(file, "threshold", t["threshold"], (n_latents,))
    hookpoint, capture, is_transcoder = gemmascope_site(source)
    return GemmaScopeCoder(
        W_enc=t["W_enc"],
        b_enc=t["b_enc"],
        threshold=t["threshold"],
        path=source.path,
        name=source.name,
        hookpoint=hookpoint,
        capture_module=hookpoint,
        capture=capture,
        d_in=d_in,
        n_latents=n_latents,
        is_transcoder=is_transcoder,
    )
