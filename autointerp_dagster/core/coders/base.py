"""What every sparse coder shares: where it reads the model, and batch encoding (`CoderSource`, where a coder
comes from, is configuration: core/config).

The caching code only needs to know which module's tensor to read and how to turn it
into (value, latent index) pairs, so each family is loaded into a `SparseCoder` that
records its capture site and encodes batches.
"""

from __future__ import annotations

import torch

from ..errors import UserError


class SparseCoderError(UserError, ValueError):
    """A sparse coder that cannot be found, read or placed on the model."""


class SparseCoder(torch.nn.Module):
    """Base class: where the coder reads the model, and batch encoding.

    Subclasses implement `_sparse` on inputs already checked and cast; TopK families
    select their k latents directly, the others keep every positive latent.
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

    def _sparse(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

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


def topk_of_positive(dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k with k = the most positive entries in any row, so no active latent is lost."""
    k = int((dense > 0).sum(dim=-1).max()) if dense.shape[0] else 1
    return dense.topk(max(k, 1), dim=-1)


def find_submodule(base_model: torch.nn.Module, module: str, label: str) -> torch.nn.Module:
    """The named module of the base model, or an error that lists real names at that depth."""
    try:
        return base_model.get_submodule(module)
    except AttributeError:
        depth = module.count(".")
        examples = [n for n, _ in base_model.named_modules() if n and n.count(".") == depth][:8]
        raise SparseCoderError(
            f"{label}: module {module!r} does not exist in {type(base_model).__name__}; set hookpoint to a "
            f"module name relative to the base model, e.g. {', '.join(examples)}"
        ) from None
