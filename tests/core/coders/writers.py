"""Coder files written in each family's real format, with random weights the tests compute references from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

D_IN, N_LAT = 16, 40


def rng(seed=0):
    return np.random.default_rng(seed)


def f32(a):
    return np.asarray(a, dtype=np.float32)


def write_sparsify(folder: Path, *, k=5, activation="topk", transcode=False, seed=0, d_in=D_IN):
    r = rng(seed)
    t = {
        "encoder.weight": f32(r.normal(size=(N_LAT, d_in))),
        "encoder.bias": f32(r.normal(size=N_LAT) * 0.1),
        "W_dec": f32(r.normal(size=(N_LAT, d_in))),
        "b_dec": f32(r.normal(size=d_in)),
    }
    folder.mkdir(parents=True, exist_ok=True)
    save_file(t, str(folder / "sae.safetensors"))
    cfg = {
        "activation": activation, "expansion_factor": 32, "normalize_decoder": True,
        "num_latents": N_LAT, "k": k, "multi_topk": False, "skip_connection": False,
        "transcode": transcode, "d_in": d_in,
    }
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return t


def write_saelens(folder: Path, architecture: str, hook_name="blocks.3.hook_resid_post", seed=0, **extra):
    r = rng(seed)
    t = {
        "W_enc": f32(r.normal(size=(D_IN, N_LAT))),
        "W_dec": f32(r.normal(size=(N_LAT, D_IN))),
        "b_dec": f32(r.normal(size=D_IN)),
    }
    if architecture == "gated":
        t |= {
            "b_gate": f32(r.normal(size=N_LAT)),
            "r_mag": f32(r.normal(size=N_LAT) * 0.3),
            "b_mag": f32(r.normal(size=N_LAT)),
        }
    else:
        t["b_enc"] = f32(r.normal(size=N_LAT) * 0.1)
    if architecture == "jumprelu":
        t["threshold"] = f32(r.uniform(0.5, 2.0, size=N_LAT))
    cfg = {"d_in": D_IN, "d_sae": N_LAT, "hook_name": hook_name, "normalize_activations": "none"}
    if architecture == "legacy-topk":  # older files: no architecture, activation_fn_str
        cfg |= {"activation_fn_str": "topk", "activation_fn_kwargs": {"k": 4}}
    else:
        cfg["architecture"] = architecture
    if architecture == "topk":
        cfg["k"] = 4
    cfg |= extra
    folder.mkdir(parents=True, exist_ok=True)
    save_file(t, str(folder / "sae_weights.safetensors"))
    (folder / "cfg.json").write_text(json.dumps(cfg))
    return t


def write_gemmascope(folder: Path, file="params.npz", lowercase=False, seed=0):
    r = rng(seed)
    t = {
        "W_enc": f32(r.normal(size=(D_IN, N_LAT))),
        "W_dec": f32(r.normal(size=(N_LAT, D_IN))),
        "b_enc": f32(r.normal(size=N_LAT) * 0.1),
        "b_dec": f32(r.normal(size=D_IN)),
        "threshold": f32(r.uniform(0.5, 2.0, size=N_LAT)),
    }
    stored = {k.lower(): v for k, v in t.items()} if lowercase else t
    folder.mkdir(parents=True, exist_ok=True)
    if file.endswith(".npz"):
        np.savez(folder / file, **stored)
    else:
        save_file(stored, str(folder / file))
    return t
