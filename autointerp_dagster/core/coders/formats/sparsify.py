"""EleutherAI sparsify SAEs and transcoders: a folder named after its hookpoint."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ...config import CoderSource
from ..base import SparseCoder, SparseCoderError
from .files import read_json, read_tensors

SPARSIFY_FILES = ("cfg.json", "sae.safetensors")


class SparsifyCoder(SparseCoder):
    """EleutherAI sparsify SAE or transcoder: ReLU then TopK or GroupMax."""

    format = "sparsify"

    def __init__(self, *, weight, bias, b_dec, k: int, activation: str, transcode: bool, **kw):
        super().__init__(**kw, is_transcoder=transcode)
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)
        self.register_buffer("b_dec", b_dec)
        self.k = k
        self.activation = activation
        self.transcode = transcode

    def _sparse(self, x):
        if not self.transcode:
            x = x - self.b_dec
        pre = F.relu(F.linear(x, self.weight, self.bias))
        if self.activation == "topk":
            return pre.topk(self.k, dim=-1, sorted=False)
        values, within = pre.unflatten(-1, (self.k, -1)).max(dim=-1)
        group = self.n_latents // self.k
        return values, within + torch.arange(0, self.n_latents, group, device=x.device)


def load_sparsify(source: CoderSource, folder: Path) -> SparsifyCoder:
    cfg = read_json(folder / "cfg.json")
    t = read_tensors(folder / "sae.safetensors", ["encoder.weight", "encoder.bias", "b_dec"])
    n_latents, d_in = t["encoder.weight"].shape
    if "d_in" in cfg and cfg["d_in"] != d_in:
        raise SparseCoderError(
            f"{folder}: cfg.json says d_in={cfg['d_in']} but encoder.weight has width {d_in}"
        )
    activation = cfg.get("activation", "topk")
    k = int(cfg.get("k", 32))
    if activation not in ("topk", "groupmax"):
        raise SparseCoderError(f"{folder}: activation {activation!r} is not one of topk, groupmax")
    if activation == "groupmax" and n_latents % k:
        raise SparseCoderError(f"{folder}: groupmax needs num_latents ({n_latents}) divisible by k ({k})")
    transcode = bool(cfg.get("transcode", False))
    hookpoint = source.hookpoint or folder.name
    return SparsifyCoder(
        weight=t["encoder.weight"],
        bias=t["encoder.bias"],
        b_dec=t["b_dec"],
        k=min(k, n_latents),
        activation=activation,
        transcode=transcode,
        path=source.path,
        name=source.name,
        hookpoint=hookpoint,
        capture_module=hookpoint,
        capture="input" if transcode else "output",
        d_in=d_in,
        n_latents=n_latents,
    )
