"""Writes a coder's latent pages: `index.html` (every explained latent, sortable and searchable) and one
`latents/<latent>.html` per latent, each with its data embedded as JSON and drawn by a small vanilla script.

Self-contained on purpose: no network, no CDN, no fetch() (browsers refuse fetch() of local files under
file://), so the pages open from disk as well as from `autointerp pages --serve`. The folder is built beside
its target and renamed into place, so a reader never sees half of them.
"""

from __future__ import annotations

import html
import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_path
from ..config import Price
from ..reporting.cost import format_cost, llm_cost
from ..store import ResultsStore
from .gather import SCORE_COLUMNS, SaeIndex, gather_index, iter_latent_pages

STATIC = Path(__file__).with_name("static")
STATIC_FILES = ("pages.css", "index.js", "latent.js")


@dataclass(frozen=True)
class PagesSummary:
    sae: str
    folder: Path
    latent_pages: int
    explained: int
    failed: int

    @property
    def index(self) -> Path:
        return self.folder / "index.html"


def pages_folder(pages_dir: Path, sae: str) -> Path:
    """One flat folder per SAE key, named so that it needs no URL quoting (`a/b` -> `a__b`)."""
    return Path(pages_dir) / re.sub(r"[^A-Za-z0-9._-]+", "__", sae)


def embed_json(value) -> str:
    """JSON safe inside a <script> element: `<`, `>` and `&` escaped, so no token can close the element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _page(title: str, data, script: str, prefix: str = "") -> str:
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><link rel=\"stylesheet\" href=\"{prefix}pages.css\"></head>\n"
        f"<body><main id=\"app\"><noscript>This page draws its content with JavaScript.</noscript></main>\n"
        f"<script id=\"data\" type=\"application/json\">{embed_json(data)}</script>\n"
        f"<script src=\"{prefix}{script}\"></script></body></html>\n"
    )


def _index_data(index: SaeIndex, prices: Mapping[str, Price]) -> dict:
    return {
        "sae": index.sae, "columns": SCORE_COLUMNS, "rows": index.rows,
        "cost": format_cost(llm_cost(index.tokens_by_model, prices), index.explained),
        "counts": {"explained": index.explained, "failed": index.failed, "sampled": index.sampled,
                   "skipped": index.skipped, "n_latents": index.n_latents, "pages": len(index.latents)},
    }


def latent_cost(tokens: Mapping[str, tuple[int, int]], prices: Mapping[str, Price]) -> str:
    """What one latent's explanations and scores cost, in words (the prices: `llm.prices`)."""
    spent = ", ".join(f"{label} {p:,} prompt + {c:,} completion tokens" for label, (p, c) in sorted(tokens.items()))
    if not spent:
        return "LLM cost: no tokens recorded"
    cost = llm_cost(tokens, prices)
    if cost.dollars is None:
        money = f"unknown (no price for {', '.join(cost.unpriced)}; set llm.prices)"
    else:
        money = f"${cost.dollars:,.4f}" if cost.paid else "no API fees (in-process models)"
    return f"LLM cost of this latent: {money}; {spent}"


def write_pages(store: ResultsStore, sae: str, pages_dir: Path, prices: Mapping[str, Price] | None = None
                ) -> PagesSummary:
    """Builds the coder's folder of pages under `pages_dir` (replacing the previous one) and the home page;
    `prices` (`llm.prices` by model) turn the tokens spent into dollars."""
    prices = prices or {}
    index = gather_index(store, sae)
    target = pages_folder(pages_dir, sae)
    with atomic_path(target) as tmp:
        (tmp / "latents").mkdir(parents=True)
        for name in STATIC_FILES:
            shutil.copyfile(STATIC / name, tmp / name)
            shutil.copyfile(STATIC / name, tmp / "latents" / name)
        (tmp / "index.html").write_text(_page(f"{sae}: latents", _index_data(index, prices), "index.js"))
        n = 0
        for page in iter_latent_pages(store, sae, index.latents):
            page.data["cost"] = latent_cost(page.data.pop("tokens"), prices)
            page.data["pages_prefix"] = "../../"  # matched latents' pages: ../../<their folder>/latents/<n>.html
            page.data["folders"] = {m["sae"]: pages_folder(Path("."), m["sae"]).name
                                    for m in page.data["matches"] or []}
            (tmp / "latents" / f"{page.latent}.html").write_text(
                _page(f"{sae} latent {page.latent}", page.data, "latent.js"))
            n += 1
    write_pages_home(Path(pages_dir))
    return PagesSummary(sae, target, n, index.explained, index.failed)


def write_pages_home(pages_dir: Path) -> Path:
    """`pages/index.html`: a link to every coder's pages found in the folder."""
    pages_dir.mkdir(parents=True, exist_ok=True)
    items = []
    for folder in sorted(p for p in pages_dir.iterdir() if (p / "index.html").is_file() and p.suffix != ".tmp"):
        text = (folder / "index.html").read_text()
        found = re.search(r"<title>(.*?): latents</title>", text)
        name = html.unescape(found.group(1)) if found else folder.name
        items.append(f"<li><a href=\"{html.escape(folder.name)}/index.html\">{html.escape(name)}</a></li>")
    body = "\n".join(items) or "<li>No latent pages yet: run <code>autointerp pages</code>.</li>"
    home = pages_dir / "index.html"
    home.write_text("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Latent pages</title>"
                    "<style>body{font:15px system-ui,sans-serif;margin:2em}</style></head><body>"
                    f"<h1>Latent pages</h1><ul>{body}</ul></body></html>\n")
    return home
