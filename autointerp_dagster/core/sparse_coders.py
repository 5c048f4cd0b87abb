"""Sparse coders from several families, behind one encoding interface.

The caching code only needs to know which module's tensor to read and how to turn it
into (value, latent index) pairs, so each family (EleutherAI sparsify, SAELens,
Gemma Scope, and plain MLP neurons as a baseline) is loaded into a `SparseCoder`
that records its capture site and encodes batches. Only the encoder side of the
weights is read: decoders are as large as encoders and never needed for caching.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open

KINDS = ("auto", "sparsify", "saelens", "gemmascope", "neurons")
SPARSIFY_FILES = ("cfg.json", "sae.safetensors")
SAELENS_FILES = ("cfg.json", "sae_weights.safetensors")
GEMMASCOPE_FILES = ("params.npz", "params.safetensors")
MLP_OUT_PROJECTIONS = ("down_proj", "dense_4h_to_h", "c_proj", "fc2", "w2")
FORBIDDEN_KEY_CHARS = "|,[]"


class SparseCoderError(ValueError):
    """A sparse coder that cannot be found, read or placed on the model."""


@dataclass(frozen=True)
class CoderSource:
    """Where a sparse coder comes from, as configured or discovered."""

    path: str
    hookpoint: str | None = None
    name: str | None = None
    kind: str = "auto"
    k: int | None = None


class SparseCoder(torch.nn.Module):
    """Base class: where the coder reads the model, and batch encoding.

    Subclasses implement `_dense` (activations for all latents); TopK families
    override `_sparse` to skip the dense detour.
    """

    format: str = ""

    def __init__(
        self,
        *,
        path: str,
        name: str | None,
        hookpoint: str,
        capture_module: str,
        capture: str,
        d_in: int,
        n_latents: int,
        is_transcoder: bool = False,
    ):
        super().__init__()
        self.path = path
        self.name = name
        self.hookpoint = hookpoint
        self.capture_module = capture_module
        self.capture = capture
        self.d_in = d_in
        self.n_latents = n_latents
        self.is_transcoder = is_transcoder
        # Tracks device and dtype through .to() even for coders without weights.
        self.register_buffer("_ref", torch.zeros(0), persistent=False)

    @property
    def dtype(self) -> torch.dtype:
        return self._ref.dtype

    @property
    def device(self) -> torch.device:
        return self._ref.device

    @property
    def label(self) -> str:
        return self.path or f"{self.format} coder at {self.hookpoint}"

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.d_in:
            raise SparseCoderError(
                f"{self.label} encodes inputs of shape [n, {self.d_in}], got {list(x.shape)}"
            )
        return x.to(device=self.device, dtype=self.dtype)

    def _dense(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _sparse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return _topk_of_positive(self._dense(x))

    def encode_dense(self, x: torch.Tensor) -> torch.Tensor:
        """[n, d_in] -> [n, n_latents] activations (zero where inactive)."""
        with torch.no_grad():
            return self._dense(self._prepare(x))

    def encode_sparse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[n, d_in] -> (values [n, k], indices [n, k] int64); values <= 0 mean inactive."""
        with torch.no_grad():
            values, indices = self._sparse(self._prepare(x))
            return values, indices.long()

    def check_width(self, width: int, model_name: str) -> None:
        """Fails early when the coder was trained on another model or site."""
        if width != self.d_in:
            raise SparseCoderError(
                f"SAE {self.label} expects inputs of width {self.d_in} at {self.hookpoint} "
                f"but {model_name} gives width {width} there"
            )


def _topk_of_positive(dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k with k = the most positive entries in any row, so no active latent is lost."""
    k = int((dense > 0).sum(dim=-1).max()) if dense.shape[0] else 1
    return dense.topk(max(k, 1), dim=-1)


def _scatter_dense(values: torch.Tensor, indices: torch.Tensor, n_latents: int) -> torch.Tensor:
    out = values.new_zeros(values.shape[0], n_latents)
    return out.scatter_(1, indices, values)


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

    def _dense(self, x):
        values, indices = self._sparse(x)
        return _scatter_dense(values, indices, self.n_latents)


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
        return _topk_of_positive(self._activations(x))

    def _dense(self, x):
        if self.architecture == "topk":
            return _scatter_dense(*self._sparse(x), self.n_latents)
        return self._activations(x)


class GemmaScopeCoder(SparseCoder):
    """Gemma Scope JumpReLU SAE or transcoder (no input centring)."""

    format = "gemmascope"

    def __init__(self, *, W_enc, b_enc, threshold, **kw):
        super().__init__(**kw)
        self.register_buffer("W_enc", W_enc)
        self.register_buffer("b_enc", b_enc)
        self.register_buffer("threshold", threshold)

    def _dense(self, x):
        pre = x @ self.W_enc + self.b_enc
        return pre * (pre > self.threshold)


class NeuronCoder(SparseCoder):
    """MLP neurons read as latents: the baseline that SAEs should beat."""

    format = "neurons"

    def __init__(self, *, k: int | None, **kw):
        super().__init__(**kw)
        self.k = k

    def _sparse(self, x):
        if self.k is None:
            return _topk_of_positive(F.relu(x))
        return F.relu(x).topk(min(self.k, self.n_latents), dim=-1)

    def _dense(self, x):
        if self.k is None:
            return F.relu(x)
        return _scatter_dense(*self._sparse(x), self.n_latents)


# ---------------------------------------------------------------- locating files


def parse_hub_path(path: str) -> tuple[str, str | None] | None:
    """'hf://org/repo/sub/dir' -> ('org/repo', 'sub/dir'); other paths -> None."""
    if not path.startswith("hf://"):
        return None
    parts = path[len("hf://") :].strip("/").split("/")
    if len(parts) < 2 or any(not p for p in parts):
        raise SparseCoderError(
            f"Hub path {path!r} is malformed: expected hf://org/repo or hf://org/repo/sub/folder"
        )
    return "/".join(parts[:2]), "/".join(parts[2:]) or None


def resolve_local(source: CoderSource) -> Path:
    """The local folder or file holding the coder, downloading Hub coders first."""
    hub = parse_hub_path(source.path)
    if hub is None:
        local = Path(source.path).expanduser()
        if not source.path or not local.exists():
            raise SparseCoderError(f"sparse coder path {source.path!r} does not exist")
        return local
    repo, sub = hub
    from huggingface_hub import snapshot_download

    try:
        root = Path(snapshot_download(repo, allow_patterns=f"{sub}/*" if sub else None))
    except Exception as exc:
        raise SparseCoderError(
            f"could not download {source.path} from the Hugging Face Hub "
            f"(repo {repo}, folder {sub or '/'}): {exc}"
        ) from exc
    local = root / sub if sub else root
    if not local.exists():
        raise SparseCoderError(f"Hub repo {repo} has no folder {sub!r} (from {source.path})")
    return local


def _format_of(file_names: set[str]) -> str | None:
    if all(f in file_names for f in SPARSIFY_FILES):
        return "sparsify"
    if all(f in file_names for f in SAELENS_FILES):
        return "saelens"
    if any(f in file_names for f in GEMMASCOPE_FILES):
        return "gemmascope"
    return None


def detect_format(folder_or_file: Path) -> str:
    """The coder family of a folder (or a Gemma Scope params file), judged by its files."""
    p = Path(folder_or_file)
    if p.is_file():
        if p.name in GEMMASCOPE_FILES:
            return "gemmascope"
        raise SparseCoderError(
            f"{p} is a file; point to the folder holding the coder "
            f"(only Gemma Scope {' or '.join(GEMMASCOPE_FILES)} may be given as a file)"
        )
    if not p.is_dir():
        raise SparseCoderError(f"sparse coder path {p} does not exist")
    names = {c.name for c in p.iterdir() if c.is_file()}
    fmt = _format_of(names)
    if fmt is None:
        found = ", ".join(sorted(names)[:20]) or "no files"
        raise SparseCoderError(
            f"{p} holds no sparse coder (found: {found}). Expected one of: "
            f"sparsify = {' + '.join(SPARSIFY_FILES)}; SAELens = {' + '.join(SAELENS_FILES)}; "
            f"Gemma Scope = {' or '.join(GEMMASCOPE_FILES)}"
        )
    return fmt


def _read_tensors(file: Path, required: list[str], optional: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Reads only the named tensors, matching names case-insensitively (w_enc = W_enc)."""
    if not file.exists():
        raise SparseCoderError(f"{file} is missing")
    wanted = (*required, *optional)
    if file.suffix == ".npz":
        with np.load(file) as archive:
            stored = {k.lower(): k for k in archive.files}
            _check_present(file, required, stored)
            return {
                n: torch.from_numpy(np.asarray(archive[stored[n.lower()]]))
                for n in wanted
                if n.lower() in stored
            }
    with safe_open(str(file), framework="pt", device="cpu") as archive:
        stored = {k.lower(): k for k in archive.keys()}
        _check_present(file, required, stored)
        return {n: archive.get_tensor(stored[n.lower()]) for n in wanted if n.lower() in stored}


def _check_present(file: Path, required: list[str], stored: dict[str, str]) -> None:
    missing = [n for n in required if n.lower() not in stored]
    if missing:
        raise SparseCoderError(
            f"{file} lacks tensor(s) {', '.join(missing)}; it holds: {', '.join(sorted(stored.values()))}"
        )


def _read_json(file: Path) -> dict:
    try:
        return json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SparseCoderError(f"cannot read coder config {file}: {exc}") from exc


def _expect_shape(path, what: str, tensor: torch.Tensor, shape: tuple[int, ...]) -> None:
    if tuple(tensor.shape) != shape:
        raise SparseCoderError(f"{path}: {what} has shape {list(tensor.shape)}, expected {list(shape)}")


# ---------------------------------------------------------------- families


def _load_sparsify(source: CoderSource, folder: Path) -> SparsifyCoder:
    cfg = _read_json(folder / "cfg.json")
    t = _read_tensors(folder / "sae.safetensors", ["encoder.weight", "encoder.bias", "b_dec"])
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


def _load_saelens(source: CoderSource, folder: Path) -> SAELensCoder:
    cfg = _read_json(folder / "cfg.json")
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
    tensors = _read_tensors(file, names, optional=("threshold", "log_threshold"))
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


_LAYER_PART = re.compile(r"layer_(\d+)(?:_|$)")
_ATTN_PART = re.compile(r"(?:^|[-_])attn?(?:$|[-_])")
_RESID_PART = re.compile(r"(?:^|[-_])res(?:id)?(?:$|[-_])")


def _gemmascope_site(path: str) -> tuple[int | None, str | None]:
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


def _gemmascope_hookpoint(source: CoderSource) -> tuple[str, str, bool]:
    """(hookpoint, capture side, is transcoder) of a Gemma Scope coder, from the source or its path."""
    layer, kind = _gemmascope_site(source.path)
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


def _load_gemmascope(source: CoderSource, local: Path) -> GemmaScopeCoder:
    candidates = [local] if local.is_file() else [local / f for f in GEMMASCOPE_FILES]
    file = next((f for f in candidates if f.exists()), None)
    if file is None:
        raise SparseCoderError(f"{local} holds neither {' nor '.join(GEMMASCOPE_FILES)}")
    t = _read_tensors(file, ["W_enc", "b_enc", "threshold"])
    d_in, n_latents = t["W_enc"].shape
    _expect_shape(file, "b_enc", t["b_enc"], (n_latents,))
    _expect_shape(file, "threshold", t["threshold"], (n_latents,))
    hookpoint, capture, is_transcoder = _gemmascope_hookpoint(source)
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


def _neuron_name(source: CoderSource) -> str:
    return source.name or (f"neurons-top{source.k}" if source.k else "neurons")


def _load_neurons(source: CoderSource, base_model: torch.nn.Module | None) -> NeuronCoder:
    if base_model is None:
        raise SparseCoderError("neuron coders need the base model to find the MLP's output projection")
    if not source.hookpoint:
        raise SparseCoderError("neuron coders need hookpoint set to an MLP module, e.g. layers.6.mlp")
    mlp = _submodule(base_model, source.hookpoint, source.hookpoint)
    children = dict(mlp.named_children())
    proj_name = next((n for n in MLP_OUT_PROJECTIONS if n in children), None)
    if proj_name is None:
        raise SparseCoderError(
            f"{source.hookpoint} has no output projection among {', '.join(MLP_OUT_PROJECTIONS)}; "
            f"its children are: {', '.join(children) or 'none'}"
        )
    proj = children[proj_name]
    width = getattr(proj, "in_features", None)
    if width is None:
        width = proj.weight.shape[0]  # transformers Conv1D (GPT-2) stores [in, out]
    name = _neuron_name(source)
    return NeuronCoder(
        k=source.k,
        path=source.path,
        name=name,
        hookpoint=source.hookpoint,
        capture_module=f"{source.hookpoint}.{proj_name}",
        capture="input",
        d_in=int(width),
        n_latents=int(width),
    )


def _submodule(base_model: torch.nn.Module, module: str, label: str) -> torch.nn.Module:
    try:
        return base_model.get_submodule(module)
    except AttributeError:
        depth = module.count(".")
        examples = [n for n, _ in base_model.named_modules() if n and n.count(".") == depth][:8]
        raise SparseCoderError(
            f"{label}: module {module!r} does not exist in {type(base_model).__name__}; set hookpoint to a "
            f"module name relative to the base model, e.g. {', '.join(examples)}"
        ) from None


def load_coder(
    source: CoderSource,
    base_model: torch.nn.Module | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
) -> SparseCoder:
    """Loads any supported coder; with `base_model`, also checks that its capture module exists.

    Without `dtype`, CPU coders run in float32 (bf16 matmuls are slow and coarse on CPU)
    and accelerator coders keep the dtype they were saved in.
    """
    if source.kind not in KINDS:
        raise SparseCoderError(f"{source.path}: kind {source.kind!r} is not one of {', '.join(KINDS)}")
    if source.kind == "neurons":
        coder: SparseCoder = _load_neurons(source, base_model)
    else:
        local = resolve_local(source)
        fmt = detect_format(local) if source.kind == "auto" else source.kind
        loader = {"sparsify": _load_sparsify, "saelens": _load_saelens, "gemmascope": _load_gemmascope}[fmt]
        coder = loader(source, local)
    if base_model is not None:
        _submodule(base_model, coder.capture_module, coder.label)
    device = torch.device(device)
    if dtype is None:
        stored = next((b.dtype for n, b in coder.named_buffers() if n != "_ref"), torch.float32)
        dtype = torch.float32 if device.type == "cpu" else stored
    return coder.to(device=device, dtype=dtype)


def coder_identity(source: CoderSource) -> tuple[str, str | None]:
    """(hookpoint, name) of a coder without reading its weights (sensors call this every few seconds).

    Matches what `load_coder` would give; Hub sources are resolved (downloaded) only when their
    hookpoint cannot be read off the path: a sparsify subfolder is named after its hookpoint.
    """
    if source.kind == "neurons":
        if not source.hookpoint:
            raise SparseCoderError("neuron coders need hookpoint set to an MLP module, e.g. layers.6.mlp")
        return source.hookpoint, _neuron_name(source)
    if source.hookpoint:
        return source.hookpoint, source.name
    hub = parse_hub_path(source.path)
    if hub is not None and hub[1] and source.kind == "sparsify":
        return hub[1].rstrip("/").rsplit("/", 1)[-1], source.name
    local = resolve_local(source)
    fmt = detect_format(local) if source.kind == "auto" else source.kind
    if fmt == "sparsify":
        return local.name, source.name
    if fmt == "saelens":
        cfg = _read_json(local / "cfg.json")
        return _saelens_site(source, local, cfg, _saelens_is_transcoder(cfg))[0], source.name
    return _gemmascope_hookpoint(source)[0], source.name


# ---------------------------------------------------------------- watched folders


def _hidden_or_partial(name: str) -> bool:
    return name.startswith(".") or name.endswith(".tmp")


def discover_coders(root: Path) -> list[CoderSource]:
    """Every coder folder under a watched directory, named so that keys stay distinct.

    A sparsify folder is named after its hookpoint, so the folders above it form the
    name; SAELens and Gemma Scope folders are named by their whole relative path.
    Hidden folders and `*.tmp` folders (copies in progress) are skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise SparseCoderError(f"watched coder directory {root} does not exist")
    found: list[CoderSource] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _hidden_or_partial(d))
        fmt = _format_of(set(filenames))
        if fmt is None:
            continue
        dirnames[:] = []  # a coder folder's subfolders are not further coders
        folder = Path(dirpath)
        rel = folder.relative_to(root).parts
        if fmt == "sparsify":
            hookpoint, name = folder.name, "-".join(rel[:-1]) or None
        else:
            hookpoint, name = None, "-".join(rel) or None
        found.append(CoderSource(path=str(folder), hookpoint=hookpoint, name=name))
    found.sort(key=lambda s: s.path)
    seen: dict[tuple, str] = {}
    for s in found:
        other = seen.setdefault((s.hookpoint, s.name), s.path)
        if other != s.path:
            raise SparseCoderError(
                f"coders {other} and {s.path} get the same name {s.name!r}; rename one folder"
            )
    return found


def source_fingerprint(source: CoderSource) -> str:
    """Cheap change detector: file names, sizes and mtimes, not contents."""
    if source.kind == "neurons":
        return f"neurons:{source.hookpoint}:{source.k}"
    if parse_hub_path(source.path) is not None:
        return source.path
    local = resolve_local(source)
    files = [local] if local.is_file() else sorted(
        p for p in local.iterdir() if p.is_file() and not p.name.startswith(".")
    )
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def coder_key(model_alias: str, hookpoint: str, name: str | None) -> str:
    """'model/hookpoint[/name]', the id under which a coder's results are stored.

    The characters refused here separate keys in lists and partition names downstream.
    """
    parts = [("model alias", model_alias), ("hookpoint", hookpoint)]
    if name is not None:
        parts.append(("coder name", name))
    for what, value in parts:
        if not value:
            raise SparseCoderError(f"{what} must not be empty")
        bad = sorted({c for c in value if c in FORBIDDEN_KEY_CHARS or c.isspace()})
        if bad:
            raise SparseCoderError(
                f"{what} {value!r} contains {''.join(bad)!r}; coder keys may not contain "
                "'|', ',', '[', ']' or whitespace"
            )
    return "/".join(value for _, value in parts)
