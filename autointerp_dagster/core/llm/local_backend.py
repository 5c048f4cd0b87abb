"""An in-process transformers chat model as a backend, for running with no server at all.

Loading a GGUF file dequantises every tensor in Python, which takes far longer than
the generation that follows, so with `convert_dir` the first load writes the model
as a safetensors folder there and later loads read that folder instead. The model is
loaded on first use and serves one request at a time (`max_concurrency` 1 and a lock):
one forward pass already uses every core or the whole GPU.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path

import torch

from autointerp_dagster.core.llm.types import BackendError, BackendReply, ChatRequest

log = logging.getLogger(__name__)

_COMPLETE_MARKER = ".converted"


class LocalBackend:
    name = "local"
    max_concurrency = 1

    def __init__(
        self,
        model_path: str,
        gguf_file: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        max_context: int = 4096,
        convert_dir: str | None = None,
    ):
        self.model_path = model_path
        self.gguf_file = gguf_file
        self.model = Path(model_path).name + (f"/{gguf_file}" if gguf_file else "")
        self.device = device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = _resolve_dtype(dtype, self.device)
        self.max_context = max_context
        self.convert_dir = convert_dir
        self._lock = threading.Lock()
        self._model = None
        self._tokenizer = None

    def __repr__(self) -> str:
        return f"LocalBackend(model={self.model!r}, device={self.device!r})"

    def generate(self, request: ChatRequest) -> BackendReply:
        with self._lock:
            if self._model is None:
                self._load()
            return self._generate(request)

    def _load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source, gguf = self._weights_source()
        kwargs = {"gguf_file": gguf} if gguf else {}
        load_dtype = torch.float32 if gguf else self.dtype  # GGUF dequantises to float32
        self._tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=load_dtype, **kwargs)
        self._model = model.to(device=self.device, dtype=self.dtype).eval()

    def _weights_source(self) -> tuple[str, str | None]:
        """Where to load from: the converted folder when there is (or can be) one."""
        if not self.gguf_file or not self.convert_dir:
            return self.model_path, self.gguf_file
        folder = Path(self.convert_dir) / Path(self.gguf_file).stem
        if not (folder / _COMPLETE_MARKER).exists():
            convert_gguf(self.model_path, self.gguf_file, folder)
        return str(folder), None

    def _generate(self, request: ChatRequest) -> BackendReply:
        from transformers import GenerationConfig

        tokenizer, model = self._tokenizer, self._model
        prompt = tokenizer.apply_chat_template(request.messages, tokenize=False, add_generation_prompt=True)
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(self.device)
        n_in = inputs["input_ids"].shape[1]
        budget = min(request.max_tokens, self.max_context - n_in)
        if budget <= 0:
            raise BackendError(f"prompt of {n_in} tokens fills the {self.max_context}-token context", 1)
        # explicit values, so the model's own sampling defaults do not apply
        sampling = {"do_sample": True, "temperature": request.temperature, "top_p": 1.0, "top_k": 0} \
            if request.temperature > 0 else {"do_sample": False}
        config = GenerationConfig(
            max_new_tokens=budget,
            repetition_penalty=1.0,
            eos_token_id=model.generation_config.eos_token_id or tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            output_logits=request.logprobs,
            return_dict_in_generate=True,
            **sampling,
        )
        with torch.inference_mode():
            out = model.generate(**inputs, generation_config=config)
        generated = out.sequences[0, n_in:].tolist()
        return BackendReply(
            text=tokenizer.decode(generated, skip_special_tokens=True),
            top_logprobs=self._top_logprobs(out.logits, generated, request.top_logprobs)
            if request.logprobs else None,
            tokens_in=n_in,
            tokens_out=len(generated),
        )

    def _top_logprobs(self, logits, generated: list[int], top_n: int) -> list[dict[str, float]]:
        """Per position: the top `top_n` tokens' logprobs, plus the chosen token's."""
        positions = []
        for step, chosen in zip(logits, generated):
            logprobs = torch.log_softmax(step[0].float(), dim=-1)
            values, ids = logprobs.topk(top_n) if top_n else (logprobs[[chosen]], torch.tensor([chosen]))
            top: dict[str, float] = {}
            for token_id, value in zip(ids.tolist(), values.tolist()):
                top.setdefault(self._tokenizer.decode([token_id]), value)  # keep the likelier of look-alikes
            top.setdefault(self._tokenizer.decode([chosen]), float(logprobs[chosen]))
            positions.append(top)
        return positions


def convert_gguf(model_dir: str, gguf_file: str, folder: Path) -> None:
    """Writes the GGUF model and tokenizer as a safetensors folder (slow once, fast after).

    A GGUF-loaded model refuses `save_pretrained` because its config still names the
    quantisation, so the weights move into a fresh model built from a cleaned config.
    The folder is built beside its final name and renamed, so a crash leaves no half copy.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to safetensors in %s (one-off)", gguf_file, folder)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, gguf_file=gguf_file)
    loaded = AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=gguf_file, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict())
    fresh.generation_config = loaded.generation_config
    staging = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    fresh.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / _COMPLETE_MARKER).touch()
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)


def _resolve_dtype(dtype: str, device: str) -> torch.dtype:
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32
