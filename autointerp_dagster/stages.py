"""The pipeline's stages, in order, each one Dagster job (jobs.py) that `autointerp run --stage` names:
inputs (corpus, embedded SAEs), cache, explain, score, similarity, summary (with the latent pages, which show
the matched latents), compare (the coder comparison)."""

STAGES = ("inputs", "cache", "explain", "score", "similarity", "summary", "compare")
