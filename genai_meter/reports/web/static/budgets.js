/* Budgets (gauge by threshold state, actual spend and the forecast fan to the period end) and savings advice. */
"use strict";
(function () {
  const { h, api, usd, exact, intf, num, time, roundDec } = GM;
  const C = GMCharts;
  const COLORS = { ok: "#16a34a", none: "#16a34a", info: "#ca8a04", warning: "#ea580c", critical: "#dc2626", exceeded: "#7f1d1d" };
  const LABEL_TO_FIELD = { service_name: "service" };
  const DAY = 86400000;
  const SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attrs) {
    const n = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    return n;
  }
  function arc(pct) {
    const a = Math.PI * (1 - Math.min(pct, 100) / 100);
    return `M 10 60 A 50 50 0 ${0} 1 ${(60 + 50 * Math.cos(a)).toFixed(2)} ${(60 - 50 * Math.sin(a)).toFixed(2)}`;
  }
  function gauge(b) {
    const pct = parseFloat(b.percent);
    const s = svg("svg", { width: "120", height: "72", viewBox: "0 0 120 72", role: "img", "aria-label": b.percent + " % of the limit" });
    s.append(svg("path", { d: "M 10 60 A 50 50 0 0 1 110 60", fill: "none", stroke: "#e2e8f0", "stroke-width": "12", "stroke-linecap": "round" }));
    for (const t of b.thresholds.filter((x) => x < 100)) {
      const a = Math.PI * (1 - t / 100);
      s.append(svg("line", { x1: (60 + 42 * Math.cos(a)).toFixed(1), y1: (60 - 42 * Math.sin(a)).toFixed(1), x2: (60 + 58 * Math.cos(a)).toFixed(1),
        y2: (60 - 58 * Math.sin(a)).toFixed(1), stroke: "#94a3b8", "stroke-width": "1.5" }));
    }
    if (pct > 0) s.append(svg("path", { d: arc(pct), fill: "none", stroke: COLORS[b.state] || COLORS.ok, "stroke-width": "12", "stroke-linecap": "round", class: "gauge-fill" }));
    const text = svg("text", { x: "60", y: "58", "text-anchor": "middle", "font-size": "16", "font-weight": "700", fill: COLORS[b.state] || COLORS.ok });
    text.textContent = pct >= 1000 ? ">999%" : roundDec(b.percent, 1) + "%";
    s.append(text);
    return s;
  }
  const amount = (b, v) => (b.unit === "usd" ? usd(v) : intf(Math.round(num(v))) + " tokens");

  function filtersOf(b) {
    const q = new URLSearchParams();
    for (const [label, value] of Object.entries(b.match || {})) {
      if (String(value).startsWith("~")) return null;
      q.append(LABEL_TO_FIELD[label] || label, value);
    }
    return q;
  }

  async function fan(b, canvasId) {
    const q = filtersOf(b);
    if (!q) return false;
    const start = Date.parse(b.from), end = Date.parse(b.to), now = Date.now();
    const usdUnit = b.unit === "usd";
    const value = (r) => (usdUnit ? num(r.cost_usd) : r.tokens_total);
    const daily = b.period !== "day";
    const step = daily ? "1d" : "1h";
    const tq = new URLSearchParams(q);
    tq.set("from", b.from);
    tq.set("step", step);
    const trend = await api("reports/trend", tq);
    const stepMs = daily ? DAY : 3600000;
    const slots = [];
    for (let t = start; t < end; t += stepMs) slots.push(t);
    const label = (t) => (daily ? time(new Date(t).toISOString()).slice(5, 10) : time(new Date(t).toISOString()).slice(11, 16));
    const actual = slots.map(() => null);
    let running = 0;
    const per = {};
    for (const r of trend.tables.series.rows) per[Date.parse(r.start)] = (per[Date.parse(r.start)] || 0) + value(r);
    slots.forEach((t, i) => { if (t <= now) { running += per[t] || 0; actual[i] = running; } });
    const spent = num(b.spent);
    const lastIdx = actual.reduce((k, v, i) => (v !== null ? i : k), -1);
    if (lastIdx >= 0) actual[lastIdx] = spent; // the exact spend so far ends the actual line
    const bands = { conservative: slots.map(() => null), likely: slots.map(() => null), aggressive: slots.map(() => null) };
    const projected = usdUnit ? b.projected_usd : b.projected_tokens;
    if (daily) {
      const horizon = Math.max(1, Math.ceil((end - now) / DAY) + 1);
      const fq = new URLSearchParams(q);
      fq.set("horizon", Math.min(366, horizon) + "d");
      const fc = await api("forecast", fq);
      const acc = { conservative: spent, likely: spent, aggressive: spent };
      for (const k of Object.keys(bands)) bands[k][lastIdx] = spent;
      for (const d of fc.days) {
        const t = Date.parse(d.day);
        const i = slots.indexOf(t);
        if (i < 0 || t + DAY <= now) continue;
        const share = t <= now ? (t + DAY - now) / DAY : 1;
        for (const k of Object.keys(bands)) {
          acc[k] += share * (usdUnit ? num(d.cost_usd[k]) : d.tokens[k]);
          bands[k][i === lastIdx ? i : i] = acc[k];
        }
      }
      if (projected) for (const k of Object.keys(bands)) bands[k][slots.length - 1] = num(projected[k]);
    } else if (projected && lastIdx >= 0) {
      for (const k of Object.keys(bands)) { bands[k][lastIdx] = spent; bands[k][slots.length - 1] = num(projected[k]); }
    }
    const limit = slots.map(() => num(b.limit));
    C.lines(canvasId, slots.map(label), [
      { label: "actual", data: actual, color: "#0f172a", width: 2.5 },
      { label: "aggressive", data: bands.aggressive, color: "#f97316", dash: [4, 3], width: 1.5 },
      { label: "likely", data: bands.likely, color: "#2563eb", dash: [6, 3] },
      { label: "conservative", data: bands.conservative, color: "#10b981", dash: [4, 3], width: 1.5, fill: "rgba(37, 99, 235, 0.12)", fillTo: 1 },
      { label: "limit", data: limit, color: "#dc2626", width: 1 },
    ], usdUnit ? { money: true } : {});
    return true;
  }

  async function budgets() {
    const box = document.getElementById("budgets");
    const data = await api("budgets", new URLSearchParams());
    if (!data.budgets.length) { box.replaceChildren(h("p", { class: "muted", text: "No budgets configured (or none visible to this token)." })); return; }
    const jobs = [];
    box.replaceChildren(...data.budgets.map((b, i) => {
      const id = "chart-budget-" + i;
      const projected = b.unit === "usd" ? b.projected_usd : b.projected_tokens;
      const match = Object.entries(b.match || {}).map(([k, v]) => k + "=" + v).join(", ") || "all calls";
      const panel = h("article", { class: "panel budget", dataset: { budget: b.name, state: b.state } },
        h("h3", {}, b.name, " ", h("span", { class: "muted", text: b.period + " " + b.period_label + " · " + match })),
        h("div", { class: "gauge" }, gauge(b), h("div", { class: "figures" },
          h("div", {}, h("strong", { class: "state-" + b.state, text: b.state === "ok" ? "within budget" : b.state }), " (" + b.severity + ")"),
          h("div", { text: "spent " + (b.unit === "usd" ? "$" + exact(b.spent) : intf(b.spent) + " tokens") + " of " + amount(b, b.limit) +
            " (" + roundDec(b.percent, 2) + " %)" }),
          h("div", { text: "daily average " + amount(b, b.daily_average) }),
          projected ? h("div", { text: "period end: " + amount(b, projected.likely) + " (" + amount(b, projected.conservative) + " – " + amount(b, projected.aggressive) + ")" }) : null,
          h("div", { text: b.crossing_day ? (parseFloat(b.percent) >= 100 ? "crossed 100 % on " : "would cross 100 % on ") + b.crossing_day.slice(0, 10) : "not expected to cross 100 % this period" }))),
        h("figure", { class: "chart" }, h("div", { class: "canvas-box" }, h("canvas", { id }), h("p", { class: "empty", hidden: true, text: "No spend yet." }))));
      jobs.push(() => fan(b, id).then((drawn) => { if (!drawn) panel.querySelector("figure").replaceChildren(h("p", { class: "muted", text: "A pattern match: no chart." })); }));
      return panel;
    }));
    await Promise.all(jobs.map((j) => j().catch((e) => GM.showNotice("Budget chart: " + e.message))));
  }

  function pageLink(apiQuery) {
    const u = new URL(apiQuery, location.origin);
    const kind = u.pathname.split("/").pop();
    u.searchParams.set("kind", kind);
    return "/reports?" + u.searchParams.toString();
  }
  async function advice() {
    const box = document.getElementById("advice");
    const r = await api("recommendations", GM.query({}, { noRange: true }));
    document.getElementById("advice-window").textContent = "(" + r.from.slice(0, 10) + " – " + r.to.slice(0, 10) + ", per " + r.group + ")";
    const items = [];
    for (const x of r.cheaper_models) {
      const alt = (x.alternatives || [])[0];
      items.push(h("li", { dataset: { kind: x.kind } }, h("strong", { text: "Save " + usd(x.saving_usd) + " (" + roundDec(x.saving_pct, 1) + " %)" }),
        `: ${r.group} “${x[r.group] || "(none)"}” spent ${usd(x.cost_usd)} on ${x.provider}/${x.model} (${intf(x.calls)} calls); ` +
        (alt ? `the same tokens on ${alt.model} would cost ${usd(alt.cost_usd)}. ` : ""),
        h("a", { href: pageLink(x.query), text: "traffic" })));
    }
    for (const x of r.prompt_cache) {
      items.push(h("li", { dataset: { kind: x.kind } }, h("strong", { text: "Caching: save " + usd(x.saving_usd) + " (" + roundDec(x.saving_pct, 1) + " %)" }),
        `: ${x.provider}/${x.model} hits the prompt cache ${roundDec(String(num(x.cache_hit_ratio) * 100), 1)} % of input tokens ` +
        `(already saved ${usd(x.realised_saving_usd)}); at ${roundDec(String(num(x.target_hit_ratio) * 100), 0)} % it would save ${usd(x.saving_usd)} more. `,
        h("a", { href: pageLink(x.query), text: "traffic" })));
    }
    for (const x of r.unpriced_models) {
      items.push(h("li", { dataset: { kind: x.kind } }, h("strong", { class: "error", text: "Unpriced: " + x.provider + "/" + x.model }),
        ` (${intf(x.calls)} calls): ${x.fix}. `, h("a", { href: pageLink(x.query), text: "traffic" })));
    }
    box.replaceChildren(items.length ? h("ul", { class: "advice" }, items) : h("p", { class: "muted", text: "No advice: nothing cheaper found in the last 30 days." }));
  }

  GM.onReady(() => Promise.all([budgets().catch((e) => GM.failed("budgets", e)), advice().catch((e) => GM.failed("advice", e))]));
})();
