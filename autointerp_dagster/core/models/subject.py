"""The language model whose internals are interpreted: loading, hookpoints, and a forward that stops early.

Hookpoints are module names relative to the transformer body (`layers.6`, `layers.6.mlp`),
as in sparsify and delphi; full names (`model.layers.6`) are accepted too. The forward
pass raises out of the network once the last requested hookpoint has been captured, so
neither the deeper layers nor the (for Gemma, 262k-wide) LM head ever run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import UserError
from .loading import load_causal_lm, load_tokenizer, resolve_device, resolve_dtype

Capture = tuple[str, str]  # (module name, "input" | "output")


class HookpointError(UserError, ValueError):
    """A hookpoint that the model does not have."""


class _StopForward(Exception):
    """Raised by the last hook to end the forward pass."""


@dataclass
class SubjectModel:
    """A loaded causal LM, its tokenizer and its transformer body (where hookpoints live)."""

    name: str
    model: nn.Module
    tokenizer: object
    device: torch.device
    dtype: torch.dtype

    @property
    def body(self) -> nn.Module:
        return getattr(self.model, "base_model", None) or self.model

    def module(self, name: str) -> nn.Module:
        """The module a hookpoint names; raises HookpointError listing valid names."""
        modules = dict(self.body.named_modules())
        prefix = self.model.base_model_prefix if hasattr(self.model, "base_model_prefix") else ""
        for candidate in (name, name.removeprefix(f"{prefix}.") if prefix else name):
            if candidate and candidate in modules:
                return modules[candidate]
        raise HookpointError(
            f"model {self.name} has no module {name!r}. Valid hookpoints (N = layer index):\n  "
            + "\n  ".join(hookpoint_patterns(modules))
        )

    def capture(self, input_ids: torch.Tensor, captures: Sequence[Capture]) -> dict[Capture, torch.Tensor]:
        """Runs the body on `input_ids` and returns the requested module inputs/outputs.

        The pass stops as soon as every capture is filled, whatever the module order.
        """
        wanted = list(dict.fromkeys(captures))
        found: dict[Capture, torch.Tensor] = {}
        handles = []

        def store(key: Capture, value) -> None:
            tensor = value[0] if isinstance(value, (tuple, list)) else value
            found[key] = tensor.detach()
            if len(found) == len(wanted):
                raise _StopForward

        for module_name, kind in wanted:
            module = self.module(module_name)
            key = (module_name, kind)
            if kind == "output":
                handles.append(module.register_forward_hook(_output_hook(key, store)))
            elif kind == "input":
                handles.append(module.register_forward_pre_hook(_input_hook(key, store), with_kwargs=True))
            else:
                raise ValueError(f"capture kind must be 'input' or 'output', not {kind!r}")
        try:
            with torch.inference_mode():
                self.body(input_ids=input_ids.to(self.device), use_cache=False)
        except _StopForward:
            pass
        finally:
            for handle in handles:
                handle.remove()
        missing = [key for key in wanted if key not in found]
        if missing:
            raise HookpointError(f"model {self.name} never ran {missing} during the forward pass")
        return found

    def widths(self, captures: Sequence[Capture]) -> dict[Capture, int]:
        """Feature width at each capture, read off a two-token forward pass."""
        probe = torch.tensor([[self.bos_token_id or 0, 1]], dtype=torch.long)
        return {key: t.shape[-1] for key, t in self.capture(probe, captures).items()}

    @property
    def bos_token_id(self) -> int | None:
        return getattr(self.tokenizer, "bos_token_id", None)


def _output_hook(key: Capture, store: Callable) -> Callable:
    def hook(_module, _args, output):
        store(key, output)

    return hook


def _input_hook(key: Capture, store: Callable) -> Callable:
    def hook(_module, args, kwargs):
        store(key, args[0] if args else kwargs["hidden_states"])

    return hook


def hookpoint_patterns(modules: dict[str, nn.Module], limit: int = 40) -> list[str]:
    """Module names with layer numbers folded (`layers.N.mlp`, N in 0..17), for error messages."""
    ranges: dict[str, list[int]] = {}
    for name in modules:
        if not name:
            continue
        numbers = [int(n) for n in re.findall(r"\.(\d+)(?=\.|$)", f".{name}")]
        pattern = re.sub(r"(?<=\.)\d+(?=\.|$)|^\d+(?=\.|$)", "N", name)
        ranges.setdefault(pattern, []).extend(numbers[:1])
    out = []
    for pattern, numbers in ranges.items():
        span = f"  (N in {min(numbers)}..{max(numbers)})" if numbers and "N" in pattern else ""
        out.append(pattern + span)
    return out[:limit] + ([f"... and {len(out) - limit} more"] if len(out) > limit else [])


def load_subject_model(spec: str, models_dir: Path, device: str = "auto", dtype: str = "auto") -> SubjectModel:
    """Loads a causal LM from a Hub name, a local folder, a .gguf file, or `embedded:gemma-3-270m`."""
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    tokenizer = load_tokenizer(spec, models_dir)
    model = load_causal_lm(spec, models_dir, torch_device, torch_dtype)
    return SubjectModel(name=spec, model=model, tokenizer=tokenizer, device=torch_device, dtype=torch_dtype)
