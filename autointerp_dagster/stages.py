"""The pipeline's stages, in order, each one Dagster job (jobs.py) that `autointerp run --stage` names:
inputs (corpus, embedded SAEs), cache, explain, score, summary (with the latent pages), similarity, compare
(the coder comparison)."""

STAGES = ("inputs", "cache", "explain", "score", "summary", "similarity", "compare")
