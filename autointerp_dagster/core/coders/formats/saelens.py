"""SAELens SAEs and transcoders: the capture site comes from a TransformerLens hook name."""

from __future__ import annotations

import re
from pathlib import Path

import torch.nn.functional as F

from ...config import CoderSource
from ..base import SparseCoder, SparseCoderError, topk_of_positive
from .files import read_json, read_tensors

SAELENS_FILES = ("cfg.json", "sae_weights.safetensors")


class SAELensCoder(SparseCoder):
    """SAELens SAE (standard ReLU, TopK, JumpReLU or gated) or transcoder."""

    format = "saelens"

    def __init__(self, *, architecture: str, tensors: dict, k: int | None, apply_b_dec: bool, **kw):
        super().__init__(**kw)
        self.architecture = architecture
        self.k = k
        self.apply_b_dec = apply_b_dec
        for key, value in tensors.items():
            self.register_buffer(key, value)

    def _activations(self, x):
        """Dense activations before any TopK selection."""
        if self.apply_b_dec:
            x = x - self.b_dec
        if self.architecture == "gated":
            gate = (x @ self.W_enc + self.b_gate) > 0
            return F.relu(x @ (self.W_enc * self.r_mag.exp()) + self.b_mag) * gate
        pre = x @ self.W_enc + self.b_enc
        if self.architecture == "jumprelu":
            return F.relu(pre) * (pre > self.threshold)
        return F.relu(pre)

    def _sparse(self, x):
        if self.architecture == "topk":
            return self._activations(x).topk(self.k, dim=-1)
        return topk_of_positive(self._activations(x))


_TL_HOOKS = (
    (re.compile(r"blocks\.(\d+)\.hook_resid_post"), "layers.{}", "output"),
    (re.compile(r"blocks\.(\d+)\.hook_resid_pre"), "layers.{}", "input"),
    (re.compile(r"blocks\.(\d+)\.hook_mlp_out"), "layers.{}.mlp", "output"),
    (re.compile(r"blocks\.(\d+)\.hook_attn_out"), "layers.{}.self_attn", "output"),
    (re.compile(r"blocks\.(\d+)\.ln2\.hook_normalized"), "layers.{}.mlp", "input"),
)
_TL_NEURONS = re.compile(r"blocks\.(\d+)\.mlp\.hook_post")


def _map_transformerlens_hook(hook_name: str) -> tuple[str, str] | None:
    """TransformerLens hook name -> (HF module relative to the base model, capture side)."""
    for pattern, module, capture in _TL_HOOKS:
        m = pattern.fullmatch(hook_name)
        if m:
            return module.format(m.group(1)), capture
    return None


# architecture in cfg.json -> (how it encodes, whether it is a transcoder)
_SAELENS_ARCHS = {
    "standard": ("standard", False),
    "topk": ("topk", False),
    "jumprelu": ("jumprelu", False),
    "gated": ("gated", False),
    "transcoder": ("standard", True),
    "skip_transcoder": ("standard", True),
    "jumprelu_transcoder": ("jumprelu", True),
    "jumprelu_skip_transcoder": ("jumprelu", True),
}


def _saelens_site(source: CoderSource, folder: Path, cfg: dict, is_transcoder: bool) -> tuple[str, str]:
    """(hookpoint, capture side) of a SAELens coder, from its TransformerLens hook name or the source."""
    meta = cfg.get("metadata") or {}
    hook_name = cfg.get("hook_name") or meta.get("hook_name") or ""
    mapped = _map_transformerlens_hook(hook_name)
    neuron_level = _TL_NEURONS.fullmatch(hook_name) is not None
    if source.hookpoint:
        hookpoint = source.hookpoint
        capture = mapped[1] if mapped else ("input" if is_transcoder or neuron_level else "output")
    elif mapped:
        hookpoint, capture = mapped
    elif neuron_level:
        raise SparseCoderError(
            f"{folder}: hook {hook_name} reads MLP neurons; set hookpoint to the MLP's output "
            "projection (e.g. layers.N.mlp.down_proj), whose input is the neuron activations"
        )
    else:
        raise SparseCoderError(
            f"{folder}: cannot map SAELens hook_name {hook_name!r} to a module of the model; set hookpoint "
            "to the module whose output the SAE reads (e.g. layers.6, layers.6.mlp)"
        )
    return hookpoint, capture


def _saelens_is_transcoder(cfg: dict) -> bool:
    meta = cfg.get("metadata") or {}
    arch_transcoder = _SAELENS_ARCHS.get(cfg.get("architecture"), ("", False))[1]
    return bool(arch_transcoder or cfg.get("is_transcoder") or cfg.get("hook_name_out") or meta.get("hook_name_out"))


def saelens_hookpoint(source: CoderSource, folder: Path) -> str:
    """The hookpoint `load_saelens` gives, read from cfg.json without the weights."""
    cfg = read_json(folder / "cfg.json")
    return _saelens_site(source, folder, cfg, _saelens_is_transcoder(cfg))[0]


def load_saelens(source: CoderSource, folder: Path) -> SAELensCoder:
    cfg = read_json(folder / "cfg.json")
    meta = cfg.get("metadata") or {}
    arch_name = cfg.get("architecture")
    if arch_name is None:
        act = cfg.get("activation_fn_str", "relu")
        arch_name = {"relu": "standard", "topk": "topk"}.get(act)
        if arch_name is None:
            raise SparseCoderError(f"{folder}: activation_fn_str {act!r} is not supported (relu, topk are)")
    if arch_name not in _SAELENS_ARCHS:
        raise SparseCoderError(
            f"{folder}: SAELens architecture {arch_name!r} is not supported; "
            f"supported: {', '.join(_SAELENS_ARCHS)}"
        )
    architecture = _SAELENS_ARCHS[arch_name][0]
    is_transcoder = _saelens_is_transcoder(cfg)
    norm = cfg.get("normalize_activations")
    if norm not in (None, "none"):
        raise SparseCoderError(
            f"{folder}: normalize_activations={norm!r} is not supported yet (only 'none'); "
            "the cached activations would be on the wrong scale"
        )
    if cfg.get("hook_head_index") is not None or meta.get("hook_head_index") is not None:
        raise SparseCoderError(
            f"{folder}: SAEs on single attention heads (hook_head_index) are not supported"
        )
    k = None
    if architecture == "topk":
        k = cfg.get("k") or (cfg.get("activation_fn_kwargs") or {}).get("k")
        if not k:
            raise SparseCoderError(f"{folder}: TopK SAE without k in cfg.json (k or activation_fn_kwargs.k)")
    apply_b_dec = bool(cfg.get("apply_b_dec_to_input", not is_transcoder))

    names = {"gated": ["W_enc", "b_gate", "r_mag", "b_mag"]}.get(architecture, ["W_enc", "b_enc"])
    if apply_b_dec:
        names.append("b_dec")
    file = folder / "sae_weights.safetensors"
    tensors = read_tensors(file, names, optional=("threshold", "log_threshold"))
    if architecture == "jumprelu":
        if "threshold" not in tensors and "log_threshold" not in tensors:
            raise SparseCoderError(f"{file}: JumpReLU SAE without threshold or log_threshold")
        log = tensors.pop("log_threshold", None)
        if "threshold" not in tensors:
            tensors["threshold"] = log.exp()
    else:
        tensors.pop("threshold", None)
        tensors.pop("log_threshold", None)
    d_in, n_latents = tensors["W_enc"].shape
    for key, value in (("d_in", d_in), ("d_sae", n_latents)):
        if key in cfg and cfg[key] != value:
            raise SparseCoderError(
                f"{folder}: cfg.json says {key}={cfg[key]} but W_enc has shape {[d_in, n_latents]}"
            )

    hookpoint, capture = _saelens_site(source, folder, cfg, is_transcoder)
    return SAELensCoder(
        architecture=architecture,
        tensors=tensors,
        k=min(int(k), n_latents) if k else None,
        apply_b_dec=apply_b_dec,
        path=source.path,
        name=source.name,
        hookpoint=hookpoint,
        capture_module=hookpoint,
        capture=capture,
        d_in=d_in,
        n_latents=n_latents,
        is_transcoder=is_transcoder,
    )
