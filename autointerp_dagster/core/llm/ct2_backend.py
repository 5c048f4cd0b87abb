"""The in-process chat model on CTranslate2: the local backend's interface, a faster engine on CPU.

CTranslate2's int8 kernels read prompts faster than torch's dynamic int8 (1.67x on the AVX-512 development
machine), need half the memory, and give logprobs that agree with llama.cpp's, where torch's P(yes) sits a
median 0.20 away; torch judges faster on that machine (one forward pass a judgment against two), not enough
to shorten a run (bench/bench_llm_engines.py; figures in the README). So `llm.engine: auto` picks
CTranslate2 on CPU. The model is converted once (core/llm/ct2_models.py).

Like the torch engine it serves one request at a time. Every answer is computed in chunks fixed by
the request alone: the messages before the last user message (CTranslate2's static prompt: a judge's
or explainer's instructions and worked turns), then the rest, so an answer never depends on the
requests before it (see core/llm/local_backend.py for why that matters). A static prompt's state is
cached once a second request brings the same one, so the shared instructions are read once, and
one-off prefixes (a retry's) are not kept. CTranslate2 int8 answers move with how a prompt is
chunked (P(yes) by up to ~0.06 between one chunk and two), which is why the chunks are fixed.
Requests are not batched: CTranslate2 4.8's batches of prompts of different lengths gave P(yes)
values up to ~0.8 away from the same prompts one at a time (bench/bench_llm_engines.py shows it).
"""

from __future__ import annotations

import os
import threading
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from autointerp_dagster.core.llm.chat_tokens import (
    before_stop,
    prefix_length,
    prompt_ids,
    prompt_positions,
    prompt_score_reply,
    top_logprobs,
)
from autointerp_dagster.core.llm.ct2_models import HF_FILES, converted_ct2_folder
from autointerp_dagster.core.llm.types import (
    BackendError,
    BackendReply,
    ChatRequest,
    PromptScoreReply,
    PromptScoreRequest,
)
from autointerp_dagster.core.models.loading import model_fingerprint, resolve_device

# Static-prompt states CTranslate2 keeps (it never drops one); a run has a few (explainer, detection,
# fuzzing), so more means varied prefixes, and the model is reloaded (seconds) to free them.
MAX_CACHED_PREFIXES = 8
SEEN_PREFIXES = 4096  # prefixes remembered (as hashes) to tell a shared one from a one-off


def compute_type(device: torch.device, quantize: str) -> str:
    """int8 on CPU (`quantize` none: float32); on CUDA 16-bit, bf16 where the GPU has it, int8 weights if asked."""
    import ctranslate2

    if quantize not in ("auto", "int8", "none"):
        raise ValueError(f"quantize must be auto, int8 or none, not {quantize!r}")
    if device.type == "cpu":
        return "float32" if quantize == "none" else "int8"
    half = "bfloat16" if "bfloat16" in ctranslate2.get_supported_compute_types("cuda", device.index or 0) \
        else "float16"
    return f"int8_{half}" if quantize == "int8" else half


class CT2Backend:
    name = "local"
    max_concurrency = 1

    def __init__(
        self,
        model: str,
        models_dir: str | Path,
        device: str = "auto",
        max_context: int = 4096,
        quantize: str = "auto",
        threads: int = 0,
    ):
        self.spec = model
        self.model = model.removeprefix("embedded:").rstrip("/").rsplit("/", 1)[-1]
        self.models_dir = Path(models_dir)
        self.device = resolve_device(device)
        self.compute_type = compute_type(self.device, quantize)
        self.weights = "int8" if self.compute_type.startswith("int8") else self.compute_type
        self.max_context = max_context
        self.threads = threads or len(os.sched_getaffinity(0))
        self._prefixes: set[tuple[int, ...]] = set()
        self._seen: dict[int, None] = {}  # hashes of static prompts met, oldest first
        self._lock = threading.Lock()
        self._folder: Path | None = None
        self._generator = None
        self._tokenizer = None
        self._end_ids: list[int] = []

    def __repr__(self) -> str:
        return f"CT2Backend(model={self.model!r}, device={str(self.device)!r}, compute_type={self.compute_type!r})"

    @cached_property
    def identity(self) -> dict[str, str]:
        """The engine and its version, the source model's files (the converted folder is a function of them,
        the version and the weights' type), and every setting that changes answers. Threads do not."""
        import ctranslate2

        return {"backend": self.name, "engine": "ctranslate2", "ctranslate2": ctranslate2.__version__,
                **model_fingerprint(self.spec), "device": str(self.device), "compute_type": self.compute_type,
                "max_context": str(self.max_context)}

    def generate(self, request: ChatRequest) -> BackendReply:
        with self._lock:
            if self._generator is None:
                self._load()
            ids = prompt_ids(self._tokenizer, request)
            budget = min(request.max_tokens, self.max_context - len(ids))
            if budget <= 0:
                raise BackendError(f"prompt of {len(ids)} tokens fills the {self.max_context}-token context", 1)
            generated, rows = self._run(ids, prefix_length(self._tokenizer, request, ids), budget, request)
            text = self._tokenizer.decode(generated, skip_special_tokens=True)
            return BackendReply(
                text=before_stop(text, request.stop),
                top_logprobs=top_logprobs(self._tokenizer, rows, generated, request.top_logprobs)
                if request.logprobs else None,
                tokens_in=len(ids),
                tokens_out=len(generated),
            )

    def prompt_logprobs(self, request: PromptScoreRequest) -> PromptScoreReply:
        """Candidate logprobs at offsets of a plain prompt (the simulation scorer), from one forward pass."""
        with self._lock:
            if self._generator is None:
                self._load()
            return prompt_score_reply(prompt_positions(self._tokenizer, request, self.max_context), self._logits_at)

    def _logits_at(self, ids: list[int], rows: list[int]) -> torch.Tensor:
        """CTranslate2 returns every position's logits; the rows asked for are kept."""
        logits = self._generator.forward_batch([self._tokenizer.convert_ids_to_tokens(ids)])
        return torch.from_numpy(_host_array(logits)[0, rows])

    def _load(self) -> None:
        from transformers import AutoTokenizer, GenerationConfig

        folder = converted_ct2_folder(self.spec, self.models_dir, self.weights)
        self._tokenizer = AutoTokenizer.from_pretrained(folder / HF_FILES)
        try:
            end = GenerationConfig.from_pretrained(folder / HF_FILES).eos_token_id
        except OSError:  # the source had no generation_config.json
            end = None
        end = end if end is not None else self._tokenizer.eos_token_id
        self._end_ids = [end] if isinstance(end, int) else list(end)
        self._folder = folder
        self._generator = self._new_generator()

    def _new_generator(self):
        import ctranslate2

        return ctranslate2.Generator(str(self._folder), device=self.device.type, device_index=self.device.index or 0,
                                     compute_type=self.compute_type, intra_threads=self.threads, inter_threads=1)

    def _run(self, ids: list[int], split: int, budget: int,
             request: ChatRequest) -> tuple[list[int], list[torch.Tensor]]:
        """Generated ids (an end token included, as transformers counts it) and, when asked, their logprob rows."""
        tokens = self._tokenizer.convert_ids_to_tokens(ids)
        options = {"max_length": budget, "include_prompt_in_result": False, "end_token": self._end_ids,
                   "return_end_token": True, "return_logits_vocab": request.logprobs}
        if request.temperature > 0:  # the whole distribution, as the torch engine samples it
            options.update(sampling_topk=0, sampling_topp=1.0, sampling_temperature=request.temperature)
        if request.stop:
            options["callback"] = self._stopper(request.stop)
        if split:
            options["cache_static_prompt"] = self._keep_prefix(tuple(ids[:split]))
            options["static_prompt"], tokens = tokens[:split], tokens[split:]
        [result] = self._generator.generate_batch([tokens], **options)
        generated = result.sequences_ids[0]
        rows = [torch.log_softmax(torch.from_numpy(_host_array(row)).float().reshape(-1), dim=-1)
                for row in result.logits[0]] if request.logprobs else []
        return generated, rows

    def _stopper(self, stops: tuple[str, ...]):
        """A step callback that ends generation once the text so far holds a stop string."""
        seen: list[int] = []

        def stop_here(step) -> bool:
            seen.append(step.token_id)
            text = self._tokenizer.decode(seen, skip_special_tokens=True)
            return any(stop in text for stop in stops)

        return stop_here

    def _keep_prefix(self, prefix: tuple[int, ...]) -> bool:
        """Whether CTranslate2 should cache this static prompt's state: yes from its second request on."""
        if prefix in self._prefixes:
            return True
        key = hash(prefix)
        if key not in self._seen:
            self._seen[key] = None
            if len(self._seen) > SEEN_PREFIXES:
                del self._seen[next(iter(self._seen))]
            return False
        if len(self._prefixes) >= MAX_CACHED_PREFIXES:
            self._generator, self._prefixes = self._new_generator(), set()  # drops CTranslate2's cached states
        self._prefixes.add(prefix)
        return True


def _host_array(row) -> np.ndarray:
    """A CTranslate2 StorageView as a NumPy array in host memory."""
    import ctranslate2

    if row.device != "cpu":
        row = row.to_device(ctranslate2.Device.cpu)
    return np.asarray(row)
