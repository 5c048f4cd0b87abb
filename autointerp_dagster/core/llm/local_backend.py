"""An in-process transformers chat model as a backend, for running with no server at all.

The model (a Hub name, a folder, a .gguf file converted once under `models_dir`, or an
`embedded:` model from PyPI) is loaded on first use and serves one request at a time
(`max_concurrency` 1 and a lock): one forward pass already uses every core or the whole GPU.

Judging one example is a one-token answer read from logprobs, and consecutive judgments share
their prompt up to the last message (system prompt and worked examples). Those requests skip
`generate`: the prompt is always computed in the same two chunks, the messages before the last
one and then the rest, and the first chunk's KV cache is kept for the next request with the same
one. The chunks depend on the request alone, never on what came before: dynamic int8 (the CPU
default, `quantize="auto"`, ~1.6x faster than float32) scales activations per forward call, so an
answer computed in other chunks would differ (P(yes) moved by up to 0.16 between orders).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from functools import cached_property
from pathlib import Path

import torch

from autointerp_dagster.core.llm.chat_tokens import (
    before_stop,
    prefix_length,
    prompt_ids,
    prompt_positions,
    prompt_score_reply,
    top_logprobs,
)
from autointerp_dagster.core.llm.types import (
    BackendError,
    BackendReply,
    ChatRequest,
    PromptScoreReply,
    PromptScoreRequest,
)
from autointerp_dagster.core.models.loading import (
    load_causal_lm,
    load_tokenizer,
    model_fingerprint,
    resolve_device,
    resolve_dtype,
)


class LocalBackend:
    name = "local"
    max_concurrency = 1

    def __init__(
        self,
        model: str,
        models_dir: str | Path,
        device: str = "auto",
        dtype: str = "auto",
        max_context: int = 4096,
        quantize: str = "auto",
    ):
        self.spec = model
        self.model = model.removeprefix("embedded:").rstrip("/").rsplit("/", 1)[-1]
        self.models_dir = Path(models_dir)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.max_context = max_context
        if quantize not in ("auto", "int8", "none"):
            raise ValueError(f"quantize must be auto, int8 or none, not {quantize!r}")
        cpu_fp32 = self.device.type == "cpu" and self.dtype == torch.float32
        if quantize == "int8" and not cpu_fp32:
            raise ValueError(f"quantize int8 needs device cpu and dtype float32, not {self.device} {self.dtype}")
        self.quantize = quantize != "none" and cpu_fp32  # dynamic int8 kernels exist for CPU fp32 only
        self._prefix_ids: list[int] = []
        self._prefix_cache = None
        self._lock = threading.Lock()
        self._model = None
        self._tokenizer = None

    def __repr__(self) -> str:
        return f"LocalBackend(model={self.model!r}, device={str(self.device)!r})"

    @cached_property
    def identity(self) -> dict[str, str]:
        """The model's files (read once, before the first load) and every setting that changes answers.

        `max_context` counts too: it can cut a generation short.
        """
        return {"backend": self.name, **model_fingerprint(self.spec), "device": str(self.device),
                "dtype": str(self.dtype).removeprefix("torch."), "quantize": "int8" if self.quantize else "none",
                "max_context": str(self.max_context)}

    def _load(self) -> None:
        if self._model is None:
            self._tokenizer = load_tokenizer(self.spec, self.models_dir)
            model = load_causal_lm(self.spec, self.models_dir, self.device, self.dtype)
            if self.quantize:
                model = torch.ao.quantization.quantize_dynamic(  # in place: no second fp32 copy
                    model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
            self._model = model

    def generate(self, request: ChatRequest) -> BackendReply:
        with self._lock:
            self._load()
            ids = prompt_ids(self._tokenizer, request)  # a last assistant message is continued (a prefill)
            n_in = len(ids)
            if min(request.max_tokens, self.max_context - n_in) <= 0:
                raise BackendError(f"prompt of {n_in} tokens fills the {self.max_context}-token context", 1)
            if request.max_tokens == 1 and request.temperature == 0:
                reply = self._one_token(ids, prefix_length(self._tokenizer, request, ids), request)
            else:
                reply = self._generate(torch.tensor([ids], device=self.device), request)
            return replace(reply, text=before_stop(reply.text, request.stop))

    def prompt_logprobs(self, request: PromptScoreRequest) -> PromptScoreReply:
        """One forward pass over the plain prompt (no chat template); at each offset that starts a token, the
        candidates' logprobs from the logits one position before it. A candidate that is not one token is left
        out, an offset inside a token gives None."""
        with self._lock:
            self._load()
            return prompt_score_reply(prompt_positions(self._tokenizer, request, self.max_context), self._logits_at)

    def _logits_at(self, ids: list[int], rows: list[int]) -> torch.Tensor:
        with torch.inference_mode():
            return self._model(input_ids=torch.tensor([ids], device=self.device),
                               logits_to_keep=torch.tensor(rows, device=self.device)).logits[0]

    def _one_token(self, ids: list[int], split: int, request: ChatRequest) -> BackendReply:
        """Greedy one-token answer: `ids[:split]` from the kept KV cache when the last request had the same
        first chunk (else computed alone and kept), then `ids[split:]` in one forward pass."""
        from transformers import DynamicCache

        prefix = ids[:split]
        with torch.inference_mode():
            if split and self._prefix_cache is not None and self._prefix_ids == prefix:
                cache = self._prefix_cache
                surplus = cache.get_seq_length() - split
                if surplus:
                    cache.crop(-surplus)  # transformers crops by the number of tokens to drop
            else:
                cache = DynamicCache()
                if split:
                    self._model(input_ids=torch.tensor([prefix], device=self.device), past_key_values=cache,
                                use_cache=True, logits_to_keep=1)
            logits = self._model(
                input_ids=torch.tensor([ids[split:]], device=self.device), past_key_values=cache,
                use_cache=True, logits_to_keep=1,
            ).logits[:, -1]
        self._prefix_ids, self._prefix_cache = (prefix, cache) if split else ([], None)
        chosen = int(logits[0].argmax())
        return BackendReply(
            text=self._tokenizer.decode([chosen], skip_special_tokens=True),
            top_logprobs=top_logprobs(self._tokenizer, [torch.log_softmax(logits[0].float(), dim=-1)], [chosen],
                                      request.top_logprobs) if request.logprobs else None,
            tokens_in=len(ids),
            tokens_out=1,
        )

    def _generate(self, input_ids: torch.Tensor, request: ChatRequest) -> BackendReply:
        from transformers import GenerationConfig

        tokenizer, model = self._tokenizer, self._model
        n_in = input_ids.shape[1]
        budget = min(request.max_tokens, self.max_context - n_in)
        # explicit values, so the model's own sampling defaults do not apply
        sampling = {"do_sample": True, "temperature": request.temperature, "top_p": 1.0, "top_k": 0} \
            if request.temperature > 0 else {"do_sample": False}
        config = GenerationConfig(
            max_new_tokens=budget,
            stop_strings=list(request.stop) or None,
            repetition_penalty=1.0,
            eos_token_id=model.generation_config.eos_token_id or tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            output_logits=request.logprobs,
            return_dict_in_generate=True,
            **sampling,
        )
        with torch.inference_mode():
            out = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                 generation_config=config, tokenizer=tokenizer)
        generated = out.sequences[0, n_in:].tolist()
        return BackendReply(
            text=tokenizer.decode(generated, skip_special_tokens=True),
            top_logprobs=top_logprobs(tokenizer, [torch.log_softmax(step[0].float(), dim=-1) for step in out.logits],
                                      generated, request.top_logprobs) if request.logprobs else None,
            tokens_in=n_in,
            tokens_out=len(generated),
        )

