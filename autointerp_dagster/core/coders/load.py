"""Loading any supported coder onto a device, by its configured or detected family."""

from __future__ import annotations

import torch

from ..config import CoderSource
from .base import SparseCoder, SparseCoderError, find_submodule
from .formats.gemmascope import load_gemmascope
from .formats.neurons import load_neurons
from .formats.random_twin import RANDOM_KIND, random_twin_of
from .formats.saelens import load_saelens
from .formats.sparsify import load_sparsify
from .locate import resolve_local, source_format

KINDS = ("auto", "sparsify", "saelens", "gemmascope", "neurons", RANDOM_KIND)
_FILE_LOADERS = {"sparsify": load_sparsify, "saelens": load_saelens, "gemmascope": load_gemmascope}


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
        coder: SparseCoder = load_neurons(source, base_model)
    elif source.kind == RANDOM_KIND:  # the trained coder's shape and read site, random weights
        trained = load_coder(CoderSource(path=source.path, hookpoint=source.hookpoint), device="cpu")
        coder = random_twin_of(source, trained)
    else:
        local = resolve_local(source)
        coder = _FILE_LOADERS[source_format(source, local)](source, local)
    if base_model is not None:
        find_submodule(base_model, coder.capture_module, coder.label)
    device = torch.device(device)
    if dtype is None:
        stored = next((b.dtype for n, b in coder.named_buffers() if n != "_ref"), torch.float32)
        dtype = torch.float32 if device.type == "cpu" else stored
    return coder.to(device=device, dtype=dtype)
