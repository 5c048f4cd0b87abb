"""CTranslate2 copies of Hugging Face chat models, converted once under `models_dir/ct2/`.

CTranslate2 reads its own format, so the model's safetensors folder (a GGUF or embedded model's
converted folder, see core/hf_models.py) is converted on first use, like the GGUF conversion: about
a minute for a 1.5B model, then later loads take seconds. The folder name carries the weights' type
and a digest of the source's fingerprint, so a changed source (or a new embedded version) gets a
fresh conversion instead of a stale one. It is built beside its final name and renamed.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from autointerp_dagster.core.atomic import atomic_path
from autointerp_dagster.core.hf_models import model_fingerprint, model_source


def ct2_folder_name(spec: str, weights: str) -> str:
    """`<model>-<weights>-<digest of the source's fingerprint>`, known without converting anything."""
    name = spec.removeprefix("embedded:").rstrip("/").rsplit("/", 1)[-1].removesuffix(".gguf")
    digest = hashlib.sha256(json.dumps(model_fingerprint(spec), sort_keys=True).encode()).hexdigest()[:12]
    return f"{name}-{weights}-{digest}"


def converted_ct2_folder(spec: str, models_dir: str | Path, weights: str) -> Path:
    """The CTranslate2 folder of `spec` with weights stored as `weights` (int8, float16, float32, ...).

    The source loads in float16 when the weights end up 8- or 16-bit: it halves the conversion's
    peak memory and rounds nothing that int8 keeps (int8 scales are per row, far coarser).
    """
    from ctranslate2.converters import TransformersConverter

    models_dir = Path(models_dir)
    target = models_dir / "ct2" / ct2_folder_name(spec, weights)
    if (target / "model.bin").exists():
        return target
    source = model_source(spec, models_dir)
    started = time.monotonic()
    print(f"converting {spec} to CTranslate2 {weights} (once) ...", flush=True)
    converter = TransformersConverter(source, low_cpu_mem_usage=True, load_as_float16=weights != "float32")
    with atomic_path(target) as partial:
        converter.convert(str(partial), quantization=weights)
    print(f"converted {spec} to {target} in {time.monotonic() - started:.0f} s", flush=True)
    return target
