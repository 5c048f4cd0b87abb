"""Checks run before the first step: what can be known wrong at load is reported then, not an hour in.

- the subject model's structure, built from its config on the meta device (no weights read, nothing
  allocated), against every coder about to be cached: its hookpoint exists and its width fits there;
- the judge: a server answers (`GET /models`), accepts the key, and says whether it serves `llm.model`;
  an in-process judge's model file or folder exists.
Each problem becomes a line of one `UserError`, so a person fixes them all in one go.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import openai
import torch
from torch import nn

from .coders import RegisteredCoder, SparseCoderError, load_coder
from .config import LLMConfig, Settings
from .errors import UserError
from .models.loading import model_source
from .models.subject import hookpoint_patterns


class PreflightError(UserError):
    """One or more inputs that cannot work, one per line."""


@cache
def model_skeleton(spec: str, models_dir: Path) -> nn.Module:
    """The model's modules with shapes and no weights (meta device), from its config alone."""
    from transformers import AutoConfig, AutoModelForCausalLM

    if spec.startswith(("/", ".", "~")) and not Path(spec).expanduser().exists():
        raise PreflightError(f"the subject model {spec!r} does not exist (setting `model`: a model folder, a .gguf "
                             "file, a Hub name or embedded:gemma-3-270m)")
    try:
        config = AutoConfig.from_pretrained(model_source(spec, models_dir))
    except (OSError, ValueError) as exc:
        raise PreflightError(f"the subject model {spec!r} cannot be read: {exc}") from None
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return getattr(model, "base_model", None) or model


def module_width(body: nn.Module, module_name: str, capture: str) -> int | None:
    """The feature width a capture site gives: exact for linear, embedding and Conv1D modules; the model's
    hidden size for blocks made of linear layers (layers, attention, MLPs); None when it cannot be told."""
    module = body.get_submodule(module_name)
    if isinstance(module, nn.Linear):
        return module.in_features if capture == "input" else module.out_features
    if isinstance(module, nn.Embedding):
        return module.embedding_dim if capture == "output" else None
    if type(module).__name__ == "Conv1D":  # transformers' GPT-2 projection: weight [in, out]
        return module.weight.shape[0] if capture == "input" else module.weight.shape[1]
    if any(isinstance(m, nn.Linear) for m in module.modules()):
        config = getattr(body, "config", None)
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        return getattr(text, "hidden_size", None)
    return None


def coder_problems(settings: Settings, coders: Mapping[str, RegisteredCoder]) -> list[str]:
    """Why each coder cannot be cached on the subject model (unreadable files, no such hookpoint, wrong width)."""
    if not coders:
        return []
    body = model_skeleton(settings.model.name, settings.models_dir)
    modules = dict(body.named_modules())
    problems = []
    for key, registered in coders.items():
        try:
            coder = load_coder(registered.source, base_model=body)
        except SparseCoderError as exc:
            message = str(exc)
            if "does not exist in" in message:
                message = (f"hookpoint {registered.hookpoint!r} is not a module of {settings.model.name}; "
                           f"its hookpoints (N = layer): {', '.join(hookpoint_patterns(modules, limit=12))}")
            problems.append(f"{key}: {message}")
            continue
        width = module_width(body, coder.capture_module, coder.capture)
        if width is not None and width != coder.d_in:
            problems.append(f"{key}: the coder reads vectors of width {coder.d_in} at {coder.capture} of "
                            f"{coder.capture_module}, where {settings.model.name} has width {width}: it was trained on "
                            "another model or site")
        del coder
    return problems


def judge_problems(config: LLMConfig, say=print) -> list[str]:
    """Whether the judge can answer: a server is reached and accepts the key; a local model's files exist."""
    if config.is_local:
        spec = config.model
        looks_local = spec.endswith(".gguf") or spec.startswith((".", "/", "~"))
        if looks_local and not Path(spec).expanduser().exists():
            return [f"llm.model {spec!r} does not exist (a .gguf file, a model folder, a Hub name or embedded:)"]
        return []
    problems = {url: _server_problem(config, url, say) for url, _ in config.servers}
    down = {url: problem for url, problem in problems.items() if problem}
    if len(down) < len(problems):  # a pool works on the replicas that answer; say which do not
        for problem in down.values():
            say(f"note: {problem}; its requests go to the other servers")
        return []
    return list(down.values())


def _server_problem(config: LLMConfig, url: str, say) -> str | None:
    key_set = bool(os.environ.get(config.api_key_env))
    client = openai.OpenAI(base_url=url, api_key=os.environ.get(config.api_key_env) or "EMPTY",
                           timeout=min(config.timeout_s, 15.0), max_retries=1)
    setting = "llm.base_urls" if config.base_urls else "llm.base_url"
    try:
        served = [m.id for m in client.models.list()]
    except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        return (f"the judge at {url} refused the request ({exc.status_code}): set the API key in "
                f"${config.api_key_env} (llm.api_key_env names the variable; it is {'set' if key_set else 'not set'})")
    except openai.APITimeoutError:
        return (f"the judge at {url} did not answer within {min(config.timeout_s, 15.0):.0f} s "
                f"({setting}; is the server up?)")
    except openai.APIConnectionError as exc:
        return f"the judge at {url} cannot be reached ({exc.__cause__ or exc}): start the server or set {setting}"
    except openai.APIStatusError as exc:
        if exc.status_code in (404, 405, 501):  # a server without the model list still answers chats
            return None
        return f"the judge at {url} answered HTTP {exc.status_code} to GET /models"
    if served and config.model not in served:
        say(f"note: the judge at {url} lists {', '.join(served[:5])}{' ...' if len(served) > 5 else ''}, "
            f"not llm.model {config.model!r}; requests may fail")
    return None


def check(problems: list[str]) -> None:
    """Raises one PreflightError naming every problem."""
    if problems:
        lines = "\n  ".join(problems)
        raise PreflightError(f"{len(problems)} problem(s) found before anything ran:\n  {lines}")
