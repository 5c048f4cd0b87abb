"""The one settings tree: precedence, validation at load, the printed configuration, the reference table in
docs/configuration.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autointerp_dagster.core.config import ConfigError, load_settings, load_settings_with_sources

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_precedence_defaults_file_environment(tmp_path):
    config = tmp_path / "a.yaml"
    config.write_text(yaml.safe_dump({"corpus": {"token_budget": 4096, "ctx_len": 64}, "llm": {"concurrency": 3}}))
    settings, sources = load_settings_with_sources(config, environ={"AUTOINTERP_CORPUS_TOKEN_BUDGET": "8192"})
    assert settings.corpus.token_budget == 8192
    assert sources["corpus.token_budget"] == "env AUTOINTERP_CORPUS_TOKEN_BUDGET"
    assert settings.corpus.ctx_len == 64 and sources["corpus.ctx_len"] == f"file {config}"
    assert settings.llm.concurrency == 3 and settings.corpus.seed == 22 and "corpus.seed" not in sources
    # AUTOINTERP_CONFIG names the file when no path is given; explicit overrides win over everything.
    settings = load_settings(environ={"AUTOINTERP_CONFIG": str(config)}, overrides={"corpus.ctx_len": 16})
    assert (settings.corpus.token_budget, settings.corpus.ctx_len) == (4096, 16)


@pytest.mark.parametrize(("content", "environ", "message"), [
    ({"corpus": {"tokn_budget": 5}}, {}, r"corpus\.tokn_budget.*did you mean 'token_budget'"),
    ({"sampling": {"peak_index": 40}}, {}, r"peak_index 40 must lie in \[0, example_ctx_len=32\)"),
    ({"llm": {"backend": "vllm"}}, {}, r"llm\.backend: Input should be 'local' or 'openai'.*got 'vllm'"),
    ({}, {"AUTOINTERP_LLM_BASEURL": "http://x"}, r"unknown setting variable AUTOINTERP_LLM_BASEURL; did you mean "
                                                 r"AUTOINTERP_LLM_BASE_URL"),
    ({}, {"AUTOINTERP_CODERS_LATENT_RANGES": "many"},
     r"coders\.latent_ranges: .*integer.*\[from env AUTOINTERP_CODERS_LATENT_RANGES\]"),
    ({"explainer": {"prefill": True, "reasoning": True}}, {}, r"set reasoning to false"),
])
def test_a_wrong_key_or_value_fails_at_load_naming_it(tmp_path, content, environ, message):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(content))
    with pytest.raises(ConfigError, match=message):
        load_settings(config, environ=environ)


def test_environment_values_read_like_yaml():
    settings = load_settings(environ={"AUTOINTERP_SAMPLING_LATENTS_PER_RANGE": "null",
                                      "AUTOINTERP_CODERS_PATHS": "[/a/b, /c/d]",
                                      "AUTOINTERP_CODERS_EMBEDDED_HOOKPOINTS": "[layers.3]"})
    assert settings.sampling.latents_per_range is None
    assert [s.path for s in settings.coders.paths] == ["/a/b", "/c/d"]
    assert settings.coders.embedded.hookpoints == ("layers.3",)


def test_old_names_still_work_and_name_the_new_ones(tmp_path, caplog):
    config = tmp_path / "old.yaml"
    config.write_text(yaml.safe_dump({"model": "some/model", "saes": ["/a/b"], "negatives": "random+hard",
                                      "embedded_saes": None, "subject_scorers": {"kl_target": 2.0}}))
    settings = load_settings(config, environ={"AUTOINTERP_LATENTS_PER_RANGE": "null",
                                              "AUTOINTERP_EMBEDDED_SAES_K": "8"}, overrides={"cache_batch_rows": 4})
    assert settings.model.name == "some/model" and [s.path for s in settings.coders.paths] == ["/a/b"]
    assert settings.sampling.negatives == "random+hard" and settings.steering.kl_target == 2.0
    assert settings.sampling.latents_per_range is None and settings.cache.batch_rows == 4
    assert settings.coders.embedded is not None and settings.coders.embedded.k == 8  # the variable set it again
    said = caplog.text
    for old, new in (("model", "model.name"), ("saes", "coders.paths"), ("subject_scorers.kl_target",
                     "steering.kl_target"), ("AUTOINTERP_LATENTS_PER_RANGE", "sampling.latents_per_range"),
                     ("AUTOINTERP_EMBEDDED_SAES_K", "coders.embedded.k"), ("cache_batch_rows", "cache.batch_rows")):
        assert f"setting `{old}`" in said and f"is now `{new}" in said


def test_judge_dependent_defaults_yield_to_what_is_set():
    """Resolved once, at load: the settings hold the values that run."""
    local = load_settings(environ={}, overrides={"explainer": {"max_tokens": 64}})
    assert local.explainer.prefill and local.explainer.max_tokens == 64
    assert local.scoring.mode == "per_example"
    assert (local.explainer.examples, local.scoring.examples_per_class) == (10, 5)
    assert local.resolved["explainer.prefill"] == "default for a local judge"
    assert "explainer.max_tokens" not in local.resolved
    server = load_settings(environ={"AUTOINTERP_LLM_BACKEND": "openai"})
    assert server.explainer.few_shot and server.scoring.mode == "batched"
    assert (server.explainer.examples, server.scoring.examples_per_class) == (None, None)
    assert (local.concurrency.llm_steps, server.concurrency.llm_steps) == (1, 4)  # one judge in memory locally
    assert load_settings(environ={"AUTOINTERP_LLM_BACKEND": "openai", "AUTOINTERP_CONCURRENCY_LLM_STEPS": "2"}
                         ).concurrency.llm_steps == 2


def test_one_seed_that_sections_follow_unless_set():
    settings = load_settings(environ={"AUTOINTERP_SEED": "7", "AUTOINTERP_SCORING_SEED": "3"})
    assert (settings.sampling.seed, settings.subject_scorers.seed, settings.coders.embedded.seed) == (7, 7, 7)
    assert settings.scoring.seed == 3 and settings.corpus.seed == 22  # set; and the corpus shuffle's own default


def test_config_command_shows_sources_and_never_the_key(tmp_path):
    secret = "sk-never-print-3b8e"
    env = {"PATH": "/usr/bin:/bin", "AUTOINTERP_HOME": str(tmp_path), "AUTOINTERP_LLM_BACKEND": "openai",
           "AUTOINTERP_LLM_API_KEY_ENV": "MY_KEY", "MY_KEY": secret}
    autointerp = Path(sys.executable).with_name("autointerp")
    out = subprocess.run([str(autointerp), "config"], env=env, capture_output=True, text=True, check=True).stdout
    assert re.search(r"llm\.backend\s+openai\s+\[env AUTOINTERP_LLM_BACKEND\]", out)
    assert re.search(r"corpus\.token_budget\s+131072\s+\[default\]", out)
    assert re.search(r"scoring\.mode\s+batched\s+\[auto: batched for a server judge\]", out)  # what runs
    assert "$MY_KEY" in out and "set, redacted" in out and secret not in out
    bad = subprocess.run([str(autointerp), "config"], env={**env, "AUTOINTERP_CORPUS_CTXLEN": "8"},
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "AUTOINTERP_CORPUS_CTX_LEN" in bad.stderr


def test_the_settings_reference_is_the_code_s():
    from autointerp_dagster.cli import settings_reference_markdown

    text = REFERENCE.read_text()
    start, end = "<!-- settings:start -->\n", "\n<!-- settings:end -->"
    assert start in text and end in text, "docs/configuration.md lacks the generated settings table"
    table = text[text.index(start) + len(start):text.index(end)]
    assert table == settings_reference_markdown(), "docs/configuration.md is stale: autointerp config --markdown"
