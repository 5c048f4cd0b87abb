"""Training small TopK SAEs with EleutherAI's sparsify, for the offline default (no SAE can be downloaded here).

Activations for every hookpoint are collected in one forward pass over the first rows of the
corpus (BOS positions dropped), then each SAE is trained on them in memory with Adam on the
fraction of variance unexplained, plus sparsify's AuxK loss to revive dead latents. The result
is saved in sparsify's own format (`<run>/<hookpoint>/cfg.json` + `sae.safetensors`), so it
loads exactly like an SAE a user brings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_path
from ..config import EmbeddedSaeSpec
from ..corpus import CorpusInfo, iter_token_batches
from ..models.subject import SubjectModel


@dataclass(frozen=True)
class TrainedSae:
    hookpoint: str
    path: Path
    fvu: float
    dead_fraction: float
    tokens: int
    seconds: float


def collect_activations(model: SubjectModel, corpus: CorpusInfo, hookpoints: tuple[str, ...], n_tokens: int,
                        batch_rows: int = 16) -> dict[str, torch.Tensor]:
    """Residual activations [n_tokens, d] at each hookpoint, from one forward pass per batch."""
    captures = [(h, "output") for h in hookpoints]
    chunks: dict[str, list[torch.Tensor]] = {h: [] for h in hookpoints}
    collected = 0
    for _rows, tokens in iter_token_batches(corpus, batch_rows):
        out = model.capture(torch.from_numpy(tokens.astype(np.int64)), captures)
        for hookpoint in hookpoints:
            acts = out[(hookpoint, "output")][:, corpus.first_position:, :]
            chunks[hookpoint].append(acts.reshape(-1, acts.shape[-1]).float().cpu())
        collected += tokens.shape[0] * (tokens.shape[1] - corpus.first_position)
        if collected >= n_tokens:
            break
    return {h: torch.cat(c)[:n_tokens] for h, c in chunks.items()}


def train_topk_sae(acts: torch.Tensor, spec: EmbeddedSaeSpec, log: Callable[[str], None] = print):
    """Trains one sparsify TopK SAE on `acts` [n, d], on the device `acts` are on; returns (sae, fvu, dead fraction)."""
    from sparsify import SparseCoder, SparseCoderConfig

    device = acts.device
    generator = torch.Generator().manual_seed(spec.seed)
    torch.manual_seed(spec.seed)
    sae = SparseCoder(acts.shape[1], SparseCoderConfig(num_latents=spec.num_latents, k=spec.k), device=device)
    sae.b_dec.data = acts.mean(0)
    # The default rate sparsify picks for this width, raised for our few hundred steps.
    lr = 4 * 2e-4 / (spec.num_latents / 2**14) ** 0.5
    optimizer = torch.optim.Adam(sae.parameters(), lr=lr)
    total_variance_per_token = (acts - acts.mean(0)).pow(2).sum(1).mean()
    steps_since_fired = torch.zeros(spec.num_latents, dtype=torch.long, device=device)
    dead_after = 4 * len(acts) // spec.batch_tokens  # batches without firing before AuxK targets a latent
    with _sparsify_decoder_for(device):
        for epoch in range(spec.epochs):
            order = torch.randperm(len(acts), generator=generator).to(device)
            fvu_sum, batches = 0.0, 0
            for start in range(0, len(acts) - spec.batch_tokens + 1, spec.batch_tokens):
                x = acts[order[start:start + spec.batch_tokens]]
                out = sae(x, dead_mask=steps_since_fired > dead_after,
                          total_variance=total_variance_per_token * len(x))
                loss = out.fvu + out.auxk_loss / 32
                optimizer.zero_grad()
                loss.backward()
                sae.remove_gradient_parallel_to_decoder_directions()
                optimizer.step()
                sae.set_decoder_norm_to_unit_norm()
                fired = torch.zeros(spec.num_latents, dtype=torch.bool, device=device)
                fired[out.latent_indices.flatten()] = True
                steps_since_fired = torch.where(fired, 0, steps_since_fired + 1)
                fvu_sum += out.fvu.item()
                batches += 1
            log(f"epoch {epoch + 1}/{spec.epochs}: fvu {fvu_sum / max(batches, 1):.3f}")
        with torch.no_grad():
            fired = torch.zeros(spec.num_latents, dtype=torch.bool, device=device)
            residual, total = 0.0, 0.0
            for start in range(0, len(acts), 4096):
                x = acts[start:start + 4096]
                out = sae(x)
                fired[out.latent_indices.flatten()] = True
                residual += float((x - out.sae_out).pow(2).sum())
                total += float((x - acts.mean(0)).pow(2).sum())
    return sae, residual / total, float((~fired).float().mean())


@contextmanager
def _sparsify_decoder_for(device: torch.device):
    """sparsify decodes with a Triton kernel whenever Triton is importable (any CUDA build of torch),
    and that kernel cannot read CPU tensors; CPU training uses its eager decoder instead."""
    import sparsify.sparse_coder as sparse_coder
    from sparsify.utils import eager_decode

    original = sparse_coder.decoder_impl
    if device.type == "cpu":
        sparse_coder.decoder_impl = eager_decode
    try:
        yield
    finally:
        sparse_coder.decoder_impl = original


def train_embedded_saes(model: SubjectModel, corpus: CorpusInfo, spec: EmbeddedSaeSpec, sae_dir: Path,
                        log: Callable[[str], None] = print) -> list[TrainedSae]:
    """Trains (unless already trained with the same spec) one SAE per hookpoint into `sae_dir/<run_name>/`."""
    run_dir = sae_dir / spec.run_name
    record = run_dir / "training.json"
    wanted = {"spec": _spec_dict(spec), "corpus_id": corpus.corpus_id, "model": model.name, "seeds": "per-hookpoint"}
    if record.exists():
        saved = json.loads(record.read_text())
        if saved.get("identity") == wanted:
            return [TrainedSae(**{**s, "path": Path(s["path"])}) for s in saved["saes"]]
    started = time.monotonic()
    log(f"collecting {spec.train_tokens} tokens of activations at {', '.join(spec.hookpoints)}")
    activations = collect_activations(model, corpus, spec.hookpoints, spec.train_tokens)
    trained = []
    with atomic_path(run_dir) as partial:  # a `.tmp` name, which coder discovery skips
        partial.mkdir()
        for index, (hookpoint, acts) in enumerate(activations.items()):
            t0 = time.monotonic()
            log(f"training a TopK SAE ({acts.shape[1]} -> {spec.num_latents}, k={spec.k}) at {hookpoint}")
            # Each hookpoint from its own seed: SAEs started from one initialisation look alike whatever their layers.
            own_seed = spec.model_copy(update={"seed": spec.seed + index})
            sae, fvu, dead = train_topk_sae(acts.to(model.device), own_seed, log)  # on the GPU when the model is
            sae.save_to_disk(partial / hookpoint)
            trained.append(TrainedSae(hookpoint, run_dir / hookpoint, fvu, dead, len(acts), time.monotonic() - t0))
            log(f"{hookpoint}: fvu {fvu:.3f}, dead latents {dead:.1%}, {time.monotonic() - t0:.0f} s")
        (partial / "training.json").write_text(json.dumps(
            {"identity": wanted, "seconds": time.monotonic() - started,
             "saes": [{**t.__dict__, "path": str(t.path)} for t in trained]}, indent=2))
    return trained


def _spec_dict(spec: EmbeddedSaeSpec) -> dict:
    return spec.model_dump(mode="json")
