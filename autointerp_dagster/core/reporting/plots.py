"""Small PNG plots for Dagster metadata and latent pages (people read a histogram faster than a table)."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def firing_frequency_histogram(frequencies: np.ndarray, title: str) -> bytes:
    """PNG histogram of log10 firing frequency over live latents; dead latents counted in the legend."""
    frequencies = np.asarray(frequencies, dtype=np.float64)
    live = frequencies[frequencies > 0]
    dead = int((frequencies == 0).sum())
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=90)
    if live.size:
        ax.hist(np.log10(live), bins=50, color="#3a6ea5")
    ax.set_xlabel("log10(firing frequency per token)")
    ax.set_ylabel("latents")
    ax.set_title(title, fontsize=10)
    ax.text(0.99, 0.95, f"live {live.size}\ndead {dead}", transform=ax.transAxes, ha="right", va="top", fontsize=9)
    return _png(fig)


def score_distributions(values_by_scorer: dict[str, list[float]], title: str) -> bytes:
    """PNG of per-latent score histograms, one panel per scorer, with chance (0.5) marked."""
    names = list(values_by_scorer) or ["(no scores)"]
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.8), dpi=90, squeeze=False)
    for ax, name in zip(axes[0], names):
        values = values_by_scorer.get(name, [])
        if values:
            ax.hist(values, bins=np.linspace(0, 1, 21), color="#3a6ea5")
        ax.axvline(0.5, color="#999", linestyle="--", linewidth=1)
        ax.set_xlim(0, 1)
        ax.set_title(f"{name} (n={len(values)})", fontsize=9)
        ax.set_xlabel("per-latent score", fontsize=8)
    axes[0][0].set_ylabel("latents")
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def recall_by_quantile(table: dict[str, list[tuple[int, float | None, float | None]]], title: str) -> bytes:
    """PNG of recall of activating examples by activation quantile, own explanation vs shuffled, per scorer."""
    names = list(table) or ["(no judgments)"]
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 2.8), dpi=90, squeeze=False)
    for ax, name in zip(axes[0], names):
        rows = table.get(name, [])
        for column, label, color in ((1, "own", "#3a6ea5"), (2, "shuffled", "#c44e52")):
            points = [(r[0], r[column]) for r in rows if r[column] is not None]
            if points:
                ax.plot(*zip(*points), marker="o", label=label, color=color)
        ax.set_ylim(0, 1)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("activation quantile (0 = weakest)", fontsize=8)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("recall")
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def _png(fig) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def markdown_image(png: bytes, alt: str) -> str:
    """Markdown that embeds a PNG inline (Dagster renders it in the asset's metadata)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


def similarity_heatmap(labels: list[str], panels: dict[str, np.ndarray], title: str) -> bytes:
    """PNG of coder x coder similarity matrices (one panel per similarity), values written in the cells;
    blank cells were not computed."""
    n = len(labels)
    fig, axes = plt.subplots(1, len(panels), figsize=(1.2 + 4.2 * len(panels), 1.6 + 0.45 * n), dpi=90,
                             squeeze=False)
    for ax, (name, matrix) in zip(axes[0], panels.items()):
        image = ax.imshow(np.ma.masked_invalid(matrix), vmin=0, vmax=1, cmap="viridis")
        for i in range(n):
            for j in range(n):
                if not np.isnan(matrix[i, j]):
                    ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if matrix[i, j] < 0.6 else "black")
        ax.set_xticks(range(n), labels, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(n), labels, fontsize=7)
        ax.set_title(name, fontsize=9)
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle(title, fontsize=10)
    return _png(fig)
