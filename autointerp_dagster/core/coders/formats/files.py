"""Reading coder files with errors that name the file and what it lacks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from ..base import SparseCoderError


def read_tensors(file: Path, required: list[str], optional: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
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


def read_json(file: Path) -> dict:
    try:
        return json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SparseCoderError(f"cannot read coder config {file}: {exc}") from exc
