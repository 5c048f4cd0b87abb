// The SAE index: one row per explanation (judges are named on the latent's page), sortable by every column,
// searchable by explanation text.
// Rows render a page at a time, so 10,000+ latents stay fast. Text goes in with textContent, never as HTML.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("data").textContent);
  const app = document.getElementById("app");
  const PAGE = 500;
  const el = (tag, attrs, text) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  };
  const fmt = (v, digits) => (v === null || v === undefined ? "" : Number(v).toFixed(digits));
  const columns = [
    {key: "latent", label: "latent", get: r => r.latent, num: true},
    {key: "explanation", label: "explanation", get: r => r.explanation},
    {key: "model", label: "explainer model", get: r => r.model},
    {key: "frequency", label: "firing freq.", get: r => r.frequency, num: true, digits: 5},
    {key: "max_activation", label: "max act.", get: r => r.max_activation, num: true, digits: 2},
  ];
  for (const c of data.columns) {
    columns.push({key: c, label: c.replace("balanced_accuracy", "bal. acc."), get: r => r.scores[c][0],
                  num: true, digits: 3});
    columns.push({key: c + " (shuffled)", label: "control", title: c + " of a shuffled explanation (control)",
                  get: r => r.scores[c][1], num: true, digits: 3, ctrl: true});
  }

  app.appendChild(el("p", {class: "small"})).appendChild(el("a", {href: "../index.html"}, "all coders"));
  app.appendChild(el("h1", {}, data.sae));
  const n = data.counts;
  app.appendChild(el("p", {class: "muted", id: "counts"},
    `${n.explained} latents explained, ${n.failed} failed, ${n.sampled} with examples, ${n.skipped} skipped ` +
    `(dead or too few activating windows)` + (n.n_latents ? ` of ${n.n_latents}.` : ".") +
    " Scores: own explanation beside its control (the same latent judged against a shuffled explanation)."));
  if (data.cost) app.appendChild(el("p", {class: "muted", id: "cost"}, data.cost.replace(/^cost/, "LLM cost")));
  if (!data.rows.length) {
    app.appendChild(el("div", {class: "notice", id: "empty"},
      "No explanations yet for this SAE: materialise `explanations` (or run `autointerp run`) " +
      "and rebuild the pages."));
    return;
  }
  if (n.failed) {
    app.appendChild(el("div", {class: "notice", id: "failed-note"},
      `${n.failed} latent(s) have only failed explanations (the explainer's answer could not be parsed); ` +
      "they are listed with status failed and their error, and have no scores."));
  }
  const bar = app.appendChild(el("div", {class: "toolbar"}));
  const search = bar.appendChild(el("input", {id: "search", type: "search",
                                              placeholder: "search explanations or a latent number"}));
  const count = bar.appendChild(el("span", {id: "count", class: "muted"}));
  const table = app.appendChild(el("table", {id: "latents"}));
  const head = table.appendChild(el("thead")).appendChild(el("tr"));
  const body = table.appendChild(el("tbody"));
  const more = app.appendChild(el("button", {id: "more"}, "show more"));
  let sortKey = "latent", sortDir = 1, shown = [], limit = PAGE;
  for (const r of data.rows) r.text = r.explanation.toLowerCase();  // searched on every keystroke

  for (const c of columns) {
    const th = head.appendChild(el("th", {"data-col": c.key, title: c.title || ("sort by " + c.label)}, c.label));
    th.addEventListener("click", () => {
      sortDir = sortKey === c.key ? -sortDir : (c.num && c.key !== "latent" ? -1 : 1);
      sortKey = c.key;
      update();
    });
  }
  const rowNode = r => {
    const tr = el("tr", {"data-latent": r.latent});
    for (const c of columns) {
      const v = c.get(r);
      const cls = (c.num ? "num" : "") + (c.ctrl ? " ctrl" : "") + (c.key === "explanation" ? " expl" : "");
      const td = tr.appendChild(el("td", {class: cls}));
      if (c.key === "latent") td.appendChild(el("a", {href: `latents/${r.latent}.html`}, String(r.latent)));
      else if (c.key === "explanation" && r.status !== "ok") {
        td.appendChild(el("span", {class: "failed", title: r.error || ""}, "failed: "));
        td.appendChild(document.createTextNode(r.error || "no explanation"));
      } else td.textContent = c.num ? fmt(v, c.digits) : (v || "");
    }
    return tr;
  };
  function update() {
    const q = search.value.trim().toLowerCase();
    const col = columns.find(c => c.key === sortKey);
    shown = data.rows.filter(r => !q || r.text.includes(q) || String(r.latent) === q);
    shown.sort((a, b) => {
      const x = col.get(a), y = col.get(b);
      if (x === null || x === undefined || x === "") return (y === null || y === undefined || y === "") ? 0 : 1;
      if (y === null || y === undefined || y === "") return -1;  // empty cells last, whichever the direction
      return (x < y ? -1 : x > y ? 1 : 0) * sortDir;
    });
    for (const th of head.children) {
      th.classList.toggle("sorted-asc", th.dataset.col === sortKey && sortDir === 1);
      th.classList.toggle("sorted-desc", th.dataset.col === sortKey && sortDir === -1);
    }
    limit = PAGE;
    draw();
  }
  function draw() {
    const frag = document.createDocumentFragment();
    for (const r of shown.slice(0, limit)) frag.appendChild(rowNode(r));
    body.replaceChildren(frag);
    count.textContent = `${shown.length} of ${data.rows.length} rows` +
      (shown.length > limit ? `, first ${limit} shown` : "");
    more.style.display = shown.length > limit ? "" : "none";
  }
  more.addEventListener("click", () => { limit += PAGE; draw(); });
  search.addEventListener("input", update);
  update();
})();
