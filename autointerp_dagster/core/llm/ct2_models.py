"""CTranslate2 copies of Hugging Face chat models, converted once under `models_dir/ct2/`.

CTranslate2 reads its own format, so the model is converted on first use, like the GGUF conversion:
about a minute for a 1.5B model, then later loads take seconds. A GGUF model (`.gguf` or `embedded:`)
is dequantised in memory and converted from there, without the float32 safetensors folder the torch
engine needs (writing and re-reading 6.7 GB cost the 1.5B judge about a minute). The folder is
self-contained: `hf/` beside the weights holds the tokenizer and generation config the engine reads.
Its name carries the weights' type and a digest of the source's fingerprint, so a changed source
(or a new embedded version) gets a fresh conversion instead of a stale one. It is built beside its
final name and renamed.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from autointerp_dagster.core.atomic import atomic_path
from autointerp_dagster.core.models.loading import (
    gguf_file,
    load_gguf,
    load_tokenizer,
    model_fingerprint,
    model_source,
)

from ..keys import stable_id

HF_FILES = "hf"  # subfolder of a converted model: tokenizer and generation config
LAYOUT = 2  # folders of layout 1 (before `hf/`) are not reused


def ct2_folder_name(spec: str, weights: str) -> str:
    """`<model>-<weights>-<digest of the source's fingerprint>`, known without converting anything."""
    name = spec.removeprefix("embedded:").rstrip("/").rsplit("/", 1)[-1].removesuffix(".gguf")
    fingerprint = {**model_fingerprint(spec), "layout": LAYOUT}
    digest = stable_id(fingerprint, 12)
    return f"{name}-{weights}-{digest}"


def converted_ct2_folder(spec: str, models_dir: str | Path, weights: str) -> Path:
    """The CTranslate2 folder of `spec` with weights stored as `weights` (int8, float16, float32, ...).

    A folder source loads in float16 when the weights end up 8- or 16-bit: it halves the conversion's
    peak memory and rounds nothing that int8 keeps (int8 scales are per row, far coarser). A GGUF loads
    in float32, transformers' fast path for it, and gives the same model.bin as its converted folder did.
    """
    import torch
    from ctranslate2.converters import TransformersConverter
    from transformers import GenerationConfig

    models_dir = Path(models_dir)
    target = models_dir / "ct2" / ct2_folder_name(spec, weights)
    if (target / "model.bin").exists():
        return target
    gguf = gguf_file(spec, models_dir)
    started = time.monotonic()
    print(f"converting {spec} to CTranslate2 {weights} (once) ...", flush=True)
    with atomic_path(target) as partial, tempfile.TemporaryDirectory(dir=models_dir) as scratch:
        if gguf is not None:
            tokenizer, model = load_gguf(gguf, torch.float32)
            model.config.save_pretrained(scratch)  # all the converter reads from disk: it picks the loader
            converter = TransformersConverter(scratch)
            converter.load_model = lambda *args, **kwargs: model
            converter.load_tokenizer = lambda *args, **kwargs: tokenizer
            generation = model.generation_config
        else:
            source = model_source(spec, models_dir)
            converter = TransformersConverter(source, low_cpu_mem_usage=True,
                                              load_as_float16=weights != "float32")
            tokenizer = load_tokenizer(spec, models_dir)
            try:
                generation = GenerationConfig.from_pretrained(source)
            except OSError:  # no generation_config.json
                generation = None
        converter.convert(str(partial), quantization=weights)
        tokenizer.save_pretrained(partial / HF_FILES)
        if generation is not None:
            generation.save_pretrained(partial / HF_FILES)
    print(f"converted {spec} to {target} in {time.monotonic() - started:.0f} s", flush=True)
    return target

