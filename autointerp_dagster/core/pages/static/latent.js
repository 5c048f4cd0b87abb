// One latent's page: explanations with scores beside their controls, the activation histogram, digest tokens,
// matched latents, activating examples by quantile (tokens shaded by activation) and negatives with the judges'
// verdicts. Text goes in with textContent, never as HTML, so tokens holding <, & or quotes show as themselves.
"use strict";
(function () {
  const d = JSON.parse(document.getElementById("data").textContent);
  const app = document.getElementById("app");
  const el = (tag, attrs, text) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  };
  const add = (parent, tag, attrs, text) => parent.appendChild(el(tag, attrs, text));
  const fmt = (v, digits = 3) => (v === null || v === undefined ? "n/a" : Number(v).toFixed(digits));
  const interval = (v, lo, hi) => fmt(v) + (lo === null || lo === undefined ? "" : ` [${fmt(lo)}, ${fmt(hi)}]`);
  const table = (parent, attrs, headers) => {  // a table with these column headers; returns its body
    const t = add(parent, "table", attrs);
    const hr = add(add(t, "thead"), "tr");
    for (const h of headers) add(hr, "th", {}, h);
    return add(t, "tbody");
  };
  const SET_NAMES = {train: "explainer", test: "scorer", random: "random negative",
                     hard_negative: "hard negative (scorers)", hard_negative_train: "hard negative (explainer)",
                     neighbour: "neighbour negative (scorers)", neighbour_train: "neighbour negative (explainer)",
                     select: "held out (best-of-k's choice)", select_random: "held-out silent (best-of-k's choice)"};

  add(add(app, "p", {class: "small"}), "a", {href: "../index.html"}, "index of " + d.sae);
  add(app, "h1", {}, `${d.sae} — latent ${d.latent}`);
  const s = d.stats;
  add(app, "p", {class: "muted", id: "stats"}, s
    ? `fires on ${s.n_activations} tokens (frequency ${fmt(s.frequency, 5)}), ` +
      `max activation ${fmt(s.max_activation, 2)}, ` +
      `mean ${fmt(s.mean_activation, 2)}` + (d.sampling ? `; examples: ${d.sampling.status}` +
      (d.sampling.reason ? ` (${d.sampling.reason})` : "") : "")
    : "no statistics recorded for this latent");
  if (d.cost) add(app, "p", {class: "muted small", id: "cost"}, d.cost);

  // Explanations and scores
  add(app, "h2", {}, "Explanations and scores");
  if (!d.explanations.length) add(app, "div", {class: "notice"}, "No explanation recorded for this latent.");
  for (const e of d.explanations) {
    const card = add(app, "div", {class: "card explanation-card"});
    if (e.status === "ok") add(card, "div", {class: "explanation"}, e.explanation);
    else {
      add(card, "div", {class: "failed"}, "Explanation failed: " + (e.error || "unknown error"));
      if (e.raw_answer) {
        add(card, "div", {class: "small muted"}, "raw answer:");
        add(card, "pre", {class: "example"}, e.raw_answer);
      }
    }
    add(card, "div", {class: "small muted"}, `${e.model} · explainer ${e.explainer} · ${e.created_at || ""}`);
    if (!e.scores.length) {
      add(card, "p", {class: "muted small"}, e.status === "ok" ? "Not scored yet." : "No scores: the explanation failed.");
      continue;
    }
    const byJudge = {};
    for (const r of e.scores) (byJudge[r.judge] = byJudge[r.judge] || []).push(r);
    for (const [judge, rows] of Object.entries(byJudge)) {
      add(card, "h3", {}, "judge " + judge);
      const tb = table(card, {class: "scores"}, ["scorer", "status", "balanced accuracy [95% CI]", "AUC [95% CI]",
                                                 "control: balanced accuracy", "control: AUC", "control latent",
                                                 "examples", "failed"]);
      const scorers = [...new Set(rows.map(r => r.scorer))];
      for (const scorer of scorers) {
        const own = rows.find(r => r.scorer === scorer && r.own) || {};
        const ctrl = rows.find(r => r.scorer === scorer && !r.own) || {};
        const tr = add(tb, "tr", {"data-scorer": scorer});
        add(tr, "td", {}, scorer);
        add(tr, "td", {class: own.status && own.status !== "ok" ? "failed" : "", title: own.error || ""},
            own.status || "");
        add(tr, "td", {class: "num own-bacc"}, interval(own.balanced_accuracy, own.ci_low, own.ci_high));
        add(tr, "td", {class: "num own-auc"}, interval(own.auc, own.auc_ci_low, own.auc_ci_high));
        add(tr, "td", {class: "num ctrl"}, interval(ctrl.balanced_accuracy, ctrl.ci_low, ctrl.ci_high));
        add(tr, "td", {class: "num ctrl"}, interval(ctrl.auc, ctrl.auc_ci_low, ctrl.auc_ci_high));
        const cl = add(tr, "td", {class: "num"});
        if (ctrl.control_latent !== null && ctrl.control_latent !== undefined)
          add(cl, "a", {href: `${ctrl.control_latent}.html`, title: "the latent whose explanation was borrowed"},
              String(ctrl.control_latent));
        add(tr, "td", {class: "num"}, own.n_examples ?? "");
        add(tr, "td", {class: "num"}, own.n_failed ?? "");
      }
    }
  }

  // Best-of-k: every draw, rated on held-out windows that neither the explainer nor a scorer saw
  if (d.draws && d.draws.length) {
    add(app, "h2", {}, "Best-of-k draws");
    add(app, "p", {class: "muted small"}, "Each draw's MiniLM AUC, its activating held-out windows against silent " +
        "ones: the choice is made on one half, the other half compares the chosen draw with the first.");
    const tb = table(app, {class: "scores", id: "draws"},
                     ["draw", "explanation", "AUC (choice half)", "AUC (other half)", "chosen"]);
    for (const r of d.draws) {
      const tr = add(tb, "tr", {"data-draw": r.draw, class: r.chosen ? "chosen" : ""});
      add(tr, "td", {class: "num", title: `${r.model} · explainer ${r.explainer}`}, String(r.draw));
      add(tr, "td", {class: r.status !== "ok" ? "failed" : "", title: r.error || ""},
          r.status === "ok" ? r.explanation : `failed: ${r.error || ""}`);
      for (const auc of [r.choice_auc, r.heldout_auc]) add(tr, "td", {class: "num"}, auc === null ? "" : fmt(auc));
      add(tr, "td", {}, r.chosen ? "chosen" : "");
    }
  }

  // Intruder detection: no explanation, the latent's windows against one of another latent's
  if (d.intruder && d.intruder.length) {
    add(app, "h2", {}, "Intruder detection (no explanation)");
    add(app, "p", {class: "muted small"}, "The judge names the one window of another latent among this latent's " +
        "held-out windows; the control shows windows of as many different latents (chance plus the judge's bias).");
    const tb = table(app, {class: "scores", id: "intruder"}, ["judge", "tasks", "status", "accuracy [95% CI]", "failed"]);
    for (const r of d.intruder) {
      const tr = add(tb, "tr", {"data-control": r.control});
      add(tr, "td", {}, r.judge);
      add(tr, "td", {}, r.control === "none" ? "own windows + 1 intruder" : "control: mixed latents");
      add(tr, "td", {class: r.status !== "ok" ? "failed" : "", title: r.error || ""}, r.status);
      add(tr, "td", {class: "num"}, interval(r.accuracy, r.ci_low, r.ci_high));
      add(tr, "td", {class: "num"}, `${r.n_failed ?? 0} of ${r.n_examples ?? 0}`);
    }
  }

  // Histogram, digest, matches
  const grid = add(app, "div", {class: "grid"});
  const left = add(grid, "div"), right = add(grid, "div");
  add(left, "h2", {}, "Activation histogram");
  if (!d.histogram) add(left, "p", {class: "muted"}, "No activations recorded.");
  else {
    const h = d.histogram, W = 520, H = 170, pad = 28, n = h.counts.length, top = Math.max(...h.counts, 1);
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("width", W); svg.setAttribute("height", H + 22); svg.setAttribute("id", "histogram");
    const bw = (W - pad) / n;
    h.counts.forEach((c, i) => {
      const r = document.createElementNS(ns, "rect");
      const bh = c ? Math.max(1, Math.log1p(c) / Math.log1p(top) * (H - 10)) : 0;
      r.setAttribute("x", pad + i * bw + 1); r.setAttribute("width", bw - 2); r.setAttribute("y", H - bh);
      r.setAttribute("height", bh); r.setAttribute("fill", "#f08c00");
      const tip = document.createElementNS(ns, "title");
      tip.textContent = `${fmt(i / n * h.max, 2)}–${fmt((i + 1) / n * h.max, 2)}: ${c}`;
      r.appendChild(tip); svg.appendChild(r);
    });
    for (const [x, label, anchor] of [[pad, "0", "start"], [W, fmt(h.max, 2), "end"]]) {
      const t = document.createElementNS(ns, "text");
      t.setAttribute("x", x); t.setAttribute("y", H + 16);
      t.setAttribute("font-size", "11"); t.setAttribute("text-anchor", anchor);
      t.textContent = label; svg.appendChild(t);
    }
    left.appendChild(svg);
    add(left, "p", {class: "small muted"},
        `non-zero activations, ${n} bins from 0 to the maximum, log-scaled counts; source: ${h.source}`);
  }
  add(right, "h2", {}, "Tokens promoted by the decoder direction");
  const promoted = d.digest && d.digest.promoted;
  if (!promoted || !promoted.length) add(right, "p", {class: "muted", id: "promoted"}, "not computed");
  else {
    const box = add(right, "div", {class: "tokens", id: "promoted"});
    for (const [tok, v] of promoted) add(box, "span", {title: "logit " + fmt(v)}, tok);
  }
  if (d.digest && d.digest.top_activating && d.digest.top_activating.length) {
    add(right, "h3", {}, "Most frequent activating tokens");
    const box = add(right, "div", {class: "tokens"});
    for (const [tok, v] of d.digest.top_activating) add(box, "span", {title: "count " + v}, tok);
  }
  add(right, "h2", {}, "Matched latents in other SAEs");
  if (!d.matches) add(right, "p", {class: "muted", id: "matches"}, "none in the results when these pages were written");
  else if (!d.matches.length) add(right, "p", {class: "muted", id: "matches"}, "no match recorded");
  else {
    const tb = table(right, {id: "matches"}, ["SAE", "latent", "method", "decoder cos.", "act. corr.", "expl. sim."]);
    for (const m of d.matches) {
      const tr = add(tb, "tr");
      add(tr, "td", {}, m.sae);
      const td = add(tr, "td", {class: "num"});
      const href = `${d.pages_prefix}${d.folders[m.sae]}/latents/${m.latent}.html`;
      if (m.has_page) add(td, "a", {href}, String(m.latent));
      else td.textContent = String(m.latent);
      add(tr, "td", {}, m.method);
      for (const k of ["decoder_cosine", "activation_correlation", "explanation_similarity"])
        add(tr, "td", {class: "num"}, fmt(m[k]));
    }
  }

  // Examples, shaded by activation relative to the latent's maximum; each with the judges' verdicts on it
  const shown = d.explanations.find(e => e.status === "ok");
  const verdicts = {};
  for (const v of d.verdicts) if (shown && v.explanation_id === shown.explanation_id)
    (verdicts[v.example_set + ":" + v.example_idx] = verdicts[v.example_set + ":" + v.example_idx] || []).push(v);
  const maxAct = (s && s.max_activation) || Math.max(0, ...d.examples.flatMap(x => x.activations)) || 1;
  const drawExample = (parent, x) => {
    const div = add(parent, "div", {class: "example", "data-set": x.set});
    add(div, "span", {class: "tag"}, SET_NAMES[x.set] || x.set);
    x.tokens.forEach((tok, i) => {
      const a = x.activations[i] || 0;
      const span = add(div, "span", {class: "tok"}, tok.replace(/\n/g, "\u21b5"));
      if (a > 0) {
        span.style.backgroundColor = `rgba(240, 140, 0, ${Math.min(1, 0.15 + 0.85 * a / maxAct).toFixed(3)})`;
        span.title = "activation " + fmt(a, 3);
        span.classList.add("active");
      }
    });
    for (const v of verdicts[x.set + ":" + x.idx] || []) {
      const right = v.prediction !== null && v.prediction === v.label;
      const said = v.prediction === null ? "unparsed" : v.prediction ? "yes" : "no";
      const what = v.scorer === "fuzzing" ? (v.label ? " (true marks)" : " (shifted marks)") : "";
      add(div, "span", {class: "verdict " + (right ? "right" : "wrong"),
                        title: v.error || `label ${v.label}, P=${fmt(v.probability)}`},
          `${v.scorer}${what}: ${said}` + (v.probability === null ? "" : ` ${fmt(v.probability, 2)}`));
    }
  };
  add(app, "h2", {}, "Activating examples by quantile");
  if (shown) add(app, "p", {class: "small muted"}, "Verdicts shown are the judges' on the first explanation above " +
    "(green: right, red: wrong). Shading: activation / the latent's maximum.");
  const activating = d.examples.filter(x => x.set === "train" || x.set === "test");
  if (!activating.length) add(app, "p", {class: "muted"}, "No activating examples recorded.");
  const quantiles = [...new Set(activating.map(x => x.quantile))].sort((a, b) => b - a);
  for (const q of quantiles) {
    const rows = activating.filter(x => x.quantile === q);
    add(app, "h3", {}, `quantile ${q}${q === quantiles[0] ? " (strongest)" : ""} — ${rows.length} windows`);
    const box = add(app, "div", {class: "quantile", "data-quantile": q});
    for (const x of rows) drawExample(box, x);
  }
  add(app, "h2", {}, "Negatives (the latent is silent) with the judges' verdicts");
  const heldOut = ["select", "select_random"];
  const negatives = d.examples.filter(x => x.set !== "train" && x.set !== "test" && !heldOut.includes(x.set));
  if (!negatives.length) add(app, "p", {class: "muted"}, "No negatives recorded.");
  const section = (sets, pool) => {
    for (const set of sets) {
      const rows = pool.filter(x => x.set === set);
      if (!rows.length) continue;
      add(app, "h3", {}, `${SET_NAMES[set]} — ${rows.length} windows`);
      const box = add(app, "div", {class: "negatives", "data-set": set});
      for (const x of rows) drawExample(box, x);
    }
  };
  section(["hard_negative", "random", "neighbour", "hard_negative_train", "neighbour_train"], negatives);
  if (d.examples.some(x => heldOut.includes(x.set))) {
    add(app, "h2", {}, "Held-out windows: best-of-k's choice, seen by no explainer or scorer");
    section(heldOut, d.examples);
  }
})();
