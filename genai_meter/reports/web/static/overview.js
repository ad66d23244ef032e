/* Overview: cards, charts over time, distributions, heatmap, latency, period over period, top tables.
   Refreshes itself every `refresh` (URL; 1m by default, off/10s/30s/1m/5m), pausable. */
"use strict";
(function () {
  const { h, api, query, option, usd, exact, intf, pct, num, time, CONFIG, table, money, exactnessOf } = GM;
  const C = GMCharts;
  const STEP_SECONDS = { "1m": 60, "1h": 3600, "1d": 86400 };
  const RANGE_SECONDS = { "1h": 3600, "24h": 86400, "7d": 604800, "30d": 2592000, "90d": 7776000, today: 86400, this_month: 2678400 };
  const MAX_POINTS = 5000;
  const REFRESH = { off: 0, "10s": 10, "30s": 30, "1m": 60, "5m": 300 };
  const DEFAULT_REFRESH = "1m";
  const ZERO_LOOKBACK = "90d"; // models seen in this long are listed at 0 when idle in the range

  function rangeSeconds() {
    const p = GM.params;
    if (p.get("from")) return ((p.get("to") ? Date.parse(p.get("to")) : Date.now()) - Date.parse(p.get("from"))) / 1000;
    return RANGE_SECONDS[GM.currentRange()] || 604800;
  }
  function allowedSteps() { return Object.keys(STEP_SECONDS).filter((s) => rangeSeconds() / STEP_SECONDS[s] <= MAX_POINTS); }
  function defaultStep() {
    const secs = rangeSeconds();
    if (secs <= 3 * 3600) return "1m";
    if (secs <= 8 * 86400) return "1h";
    return "1d";
  }

  function card(label, value, sub, extra) {
    return h("article", { class: "card" + (extra && extra.cls ? " " + extra.cls : ""), dataset: { card: extra && extra.key } },
      h("h3", { text: label }), h("p", { class: "value" }, value), sub ? h("p", { class: "sub" }, sub) : null);
  }
  function change(pctText) {
    if (pctText === null || pctText === undefined) return null;
    const up = parseFloat(pctText) >= 0;
    return h("span", { class: up ? "up" : "down", text: (up ? "▲ " : "▼ ") + GM.roundDec(pctText.replace("-", ""), 1) + " % vs previous" });
  }
  const plural = (n, one, many) => intf(n) + " " + (n === 1 ? one : many);

  function costCard(s, ch) {
    const e = exactnessOf(s);
    let sub;
    if (s.cost_usd === null || s.cost_usd === undefined) sub = "no call of the range has a price";
    else if (e.kind === "exact") sub = h("span", { class: "exact", text: "exact $" + exact(s.cost_usd) });
    else if (e.kind === "upper_bound") sub = h("span", { class: "est", text: "at most $" + exact(s.cost_usd) + ": " + plural(e.bounded, "call", "calls") + " with unknown cache tokens" });
    else sub = h("span", { class: "est", text: "$" + exact(s.cost_usd) + " for the priced calls; " + plural(e.unpriced, "call", "calls") + " unpriced" });
    return card("Cost", money(s.cost_usd, s), [sub, " ", change(ch.cost_pct)], { key: "cost", cls: e.kind === "exact" ? "" : "est-card" });
  }
  function exactnessCard(s) {
    // What is exact, bounded or unknown: counts of calls behind the money figures of the range.
    const e = exactnessOf(s);
    const words = { exact: "exact", upper_bound: "upper bound", incomplete: "incomplete" };
    const exactCalls = Math.max(0, (s.calls || 0) - e.unpriced - e.bounded);
    return card("Cost exactness", words[e.kind] || e.kind,
      [plural(exactCalls, "call", "calls") + " exact · " + plural(e.bounded, "call", "calls") + " upper bound (≤) · " +
        plural(e.unpriced, "call", "calls") + " unpriced (≥, not in the cost)"],
      { key: "exactness", cls: e.kind === "exact" ? "" : "est-card warn" });
  }

  async function cards() {
    const box = document.getElementById("cards");
    const [sum, fc, bud] = await Promise.all([
      api("reports/summary", query({ compare: "previous_period" })),
      api("forecast", query({ horizon: "1d" }, { noRange: true })).catch(() => null),
      api("budgets", new URLSearchParams()).catch(() => ({ budgets: [] })),
    ]);
    const s = sum.summary;
    const ch = s.change || {};
    const e = exactnessOf(s);
    const perCall = [money(s.cost_per_call_usd, s)];
    if (e.kind === "exact" && s.cost_per_call_usd) perCall.push(h("span", { class: "exact", text: " (exact $" + exact(s.cost_per_call_usd) + ")" }));
    const list = [
      costCard(s, ch),
      card("Requests", intf(s.calls), change(ch.calls_pct), { key: "requests" }),
      card("Success / failure", intf(s.successes) + " / " + intf(s.failures), "error rate " + pct(s.error_rate, 2), { key: "errors", cls: parseFloat(s.error_rate) > 0.05 ? "warn" : "" }),
      card("Tokens", intf(s.tokens_total), "in " + intf(s.tokens_in) + " · out " + intf(s.tokens_out), { key: "tokens" }),
      card("Per request", intf(Math.round(num(s.tokens_per_call))) + " tokens", perCall, { key: "per-request" }),
      exactnessCard(s),
    ];
    const monthly = (bud.budgets || []).find((b) => b.period === "month" && b.unit === "usd" && !Object.keys(b.match || {}).length) ||
      (bud.budgets || []).find((b) => b.period === "month" && b.unit === "usd");
    if (monthly) {
      list.push(card("Month to date", money(monthly.spent, monthly), [h("span", { class: "state-" + monthly.state, text: GM.roundDec(monthly.percent, 1) + " %" }),
        " of $" + GM.roundDec(monthly.limit, 2) + " (" + monthly.name + "; " + monthly.status + ")"], { key: "mtd", cls: "state-" + monthly.state }));
    } else if (fc) {
      list.push(card("Month to date", money(fc.month.spent_usd, fc.month), "no monthly budget configured", { key: "mtd" }));
    }
    if (fc && fc.month.projected_usd) {
      const p = fc.month.projected_usd;
      const proj = fc.month.projection || {};
      const how = proj.history_days ? "current rate + " + proj.history_days + " days of history" : "at the current rate";
      list.push(card("Projected month end", h("span", { class: "est", title: "an estimate: " + (proj.method_text || ""), text: usd(p.likely, 2) }),
        ["range " + usd(p.conservative, 2) + " – " + usd(p.aggressive, 2), h("br"), h("span", { title: proj.method_text || "", text: how })],
        { key: "projected" }));
    }
    box.replaceChildren(...list);
    box.dataset.costExact = s.cost_usd === null ? "" : s.cost_usd;
  }

  /* ---------- cost and requests over time ---------- */
  function stackOptions() {
    const sel = document.getElementById("stack");
    const options = ["model", "provider", "service", "operation", ...CONFIG.fields.filter((f) => !["model", "provider", "service", "operation"].includes(f))];
    const chosen = option("stack", "model");
    for (const f of options) sel.append(h("option", { value: f, text: f, selected: f === chosen }));
    sel.addEventListener("change", () => GM.go((p) => p.set("stack", sel.value)));
    const stepSel = document.getElementById("step");
    const allowed = allowedSteps();
    let step = option("step", defaultStep());
    if (!allowed.includes(step)) step = allowed.includes(defaultStep()) ? defaultStep() : allowed[allowed.length - 1];
    for (const s of Object.keys(STEP_SECONDS)) stepSel.append(h("option", { value: s, text: s, disabled: !allowed.includes(s), selected: s === step }));
    stepSel.addEventListener("change", () => GM.go((p) => p.set("step", stepSel.value)));
    return { stack: chosen, step };
  }

  function label(iso, step) { const t = time(iso); return step === "1d" ? t.slice(0, 10) : (step === "1h" ? t.slice(5) : t.slice(11)); }
  function evenStarts(starts, step) {
    // Every step from the first to the last (the API fills them; this keeps the axis even if it could not).
    if (!starts.length || step === "1d") return starts;
    const ms = STEP_SECONDS[step] * 1000;
    const out = [];
    for (let t = Date.parse(starts[0]); t <= Date.parse(starts[starts.length - 1]); t += ms) out.push(new Date(t).toISOString());
    return out;
  }

  async function trend(opts) {
    const { stack, step } = opts;
    const rep = await api("reports/trend", query({ step, group_by: stack }));
    const rows = rep.tables.series.rows;
    const starts = evenStarts([...new Set(rows.map((r) => r.start))].sort(), step);
    const totals = {};
    for (const r of rows) totals[r[stack]] = (totals[r[stack]] || 0) + num(r.cost_usd) + r.calls * 1e-9;
    const keys = Object.keys(totals).sort((a, b) => totals[b] - totals[a]);
    const top = keys.slice(0, 8);
    const name = (k) => (top.includes(k) ? (k === "" ? "(none)" : k) : "other");
    const names = [...top.map((k) => (k === "" ? "(none)" : k)), ...(keys.length > 8 ? ["other"] : [])];
    const idx = Object.fromEntries(starts.map((s, i) => [Date.parse(s), i]));
    const cost = Object.fromEntries(names.map((n) => [n, starts.map(() => 0)]));
    const calls = Object.fromEntries(names.map((n) => [n, starts.map(() => 0)]));
    for (const r of rows) { const i = idx[Date.parse(r.start)]; cost[name(r[stack])][i] += num(r.cost_usd); calls[name(r[stack])][i] += r.calls; }
    const labels = starts.map((s) => label(s, step));
    C.stackedBar("chart-cost-time", labels, names.map((n) => ({ label: n, data: cost[n] })), { money: true });
    C.stackedBar("chart-requests-time", labels, names.map((n) => ({ label: n, data: calls[n] })), {});
    for (const id of ["chart-cost-time", "chart-requests-time"]) {
      const canvas = document.getElementById(id);
      canvas.dataset.buckets = String(starts.length);
      canvas.dataset.step = step;
    }
    heatmap(rep.tables.heatmap);
    period(rep.tables.comparisons);
  }

  function heatmap(tbl) {
    const box = document.getElementById("heatmap");
    const days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const cells = {};
    let max = 0;
    for (const r of (tbl ? tbl.rows : [])) { cells[r.day_of_week + "-" + r.hour] = r; max = Math.max(max, r.calls); }
    const grid = [h("div", { class: "hm-corner" })];
    for (let hr = 0; hr < 24; hr++) grid.push(h("div", { class: "hm-hour", text: hr % 3 === 0 ? String(hr) : "" }));
    let drawn = 0;
    for (const d of days) {
      grid.push(h("div", { class: "hm-day", text: d }));
      for (let hr = 0; hr < 24; hr++) {
        const r = cells[d + "-" + hr];
        const v = r ? r.calls : 0;
        if (v) drawn++;
        const alpha = max ? 0.08 + 0.92 * (v / max) : 0;
        grid.push(h("div", { class: "hm-cell" + (v ? " on" : ""), style: v ? `background: rgba(37, 99, 235, ${alpha.toFixed(3)})` : null,
          title: `${d} ${String(hr).padStart(2, "0")}:00 — ${intf(v)} requests` + (r && r.cost_usd !== null ? ", " + usd(r.cost_usd) : "") }));
      }
    }
    box.replaceChildren(...grid);
    box.dataset.points = String(drawn);
  }

  function period(tbl) {
    const rows = tbl ? tbl.rows : [];
    const names = { week_over_week: "Week over week", period_over_period: "This range vs the previous", year_over_year: "Year over year" };
    C.bars("chart-period", rows.map((r) => names[r.comparison] || r.comparison), [
      { label: "Previous (USD)", data: rows.map((r) => num(r.previous_cost_usd)), color: "#94a3b8" },
      { label: "Current (USD)", data: rows.map((r) => num(r.cost_usd)), color: "#2563eb" },
    ], { money: true });
    document.getElementById("period-table").replaceChildren(table([
      { key: "comparison", title: "Comparison", type: "text", render: (v) => names[v] || v },
      { key: "cost_usd", title: "Cost", type: "usd" }, { key: "previous_cost_usd", title: "Previous", type: "usd" },
      { key: "change_pct", title: "Change", type: "text", render: (v) => (v === null || v === undefined ? "–" : GM.roundDec(v, 1) + " %") },
      { key: "calls", title: "Requests", type: "int" }, { key: "previous_calls", title: "Previous", type: "int" },
    ], rows, { compact: true }));
  }

  async function models() {
    const lookback = query({ limit: 500 }, {});
    lookback.delete("range"); lookback.delete("from"); lookback.delete("to"); lookback.set("range", ZERO_LOOKBACK);
    const [det, cost, seen] = await Promise.all([api("reports/detailed", query({ group_by: "model", top: 10 })), api("reports/cost", query()),
      api("dimensions/model/values", lookback).catch(() => ({ values: [] }))]);
    const groups = det.tables.groups.rows;
    C.doughnut("chart-model-tokens", groups.map((r) => r.model), groups.map((r) => r.tokens_total));
    C.doughnut("chart-model-cost", groups.map((r) => r.model), groups.map((r) => num(r.cost_usd)), { money: true });
    const rbm = det.tables.requests_by_model.rows.map((r) => ({ model: r.model, calls: r.calls }));
    for (const m of seen.values || []) if (m && !rbm.some((r) => r.model === m)) rbm.push({ model: m, calls: 0 });
    const idle = rbm.filter((r) => !r.calls).length;
    document.getElementById("idle-note").textContent = idle
      ? `(${idle} model${idle === 1 ? "" : "s"} with no request in this range, of those seen in the last 90 days, at 0)`
      : "(every model seen in the last 90 days had requests in this range)";
    const box = document.getElementById("chart-requests-model").parentElement;
    box.style.height = Math.max(220, 24 * rbm.length + 60) + "px";
    C.bars("chart-requests-model", rbm.map((r) => r.model + (r.calls ? "" : " (0)")), [{ label: "Requests", data: rbm.map((r) => r.calls) }], { horizontal: true });
    document.getElementById("chart-requests-model").dataset.models = String(rbm.length);
    const cls = cost.tables.by_token_class.rows;
    C.bars("chart-token-class", cls.map((r) => r.token_class.replace("_", " ")), [{ label: "Cost (USD)", data: cls.map((r) => num(r.cost_usd)) }], { money: true });
  }

  async function latency() {
    // every call of the range, aggregated by the service (GET /api/v1/latency)
    const [byModel, byOperation] = await Promise.all(["model", "operation"].map((by) => api("latency", query({ group_by: by }))));
    const calls = byModel.groups.reduce((a, g) => a + g.calls, 0);
    document.getElementById("latency-note").textContent = `(${intf(calls)} calls)`;
    for (const [by, body] of [["model", byModel], ["operation", byOperation]]) {
      const groups = body.groups;
      C.bars("chart-latency-" + by, groups.map((g) => g.key[by]), [
        { label: "average (s)", data: groups.map((g) => g.avg_s), color: "#0ea5e9" },
        { label: "p95 (s)", data: groups.map((g) => g.p95_s), color: "#f97316" },
      ], { unit: "s" });
    }
  }

  async function tops() {
    const box = document.getElementById("top-tables");
    const fields = ["customer", "feature", "user"].filter((f) => CONFIG.fields.includes(f));
    const parts = await Promise.all(fields.map((f) => api("reports/detailed", query({ group_by: f, top: 10 })).then((d) => [f, d])));
    box.replaceChildren(h("div", { class: "tops" }, parts.map(([f, d]) => {
      const t = d.tables["top_cost_" + f];
      return h("div", { class: "topk", dataset: { top: f } }, h("h3", { text: "Top " + f + "s by cost" }),
        table([{ key: f, title: f[0].toUpperCase() + f.slice(1), type: "text", render: (v) => (v === "" ? "(none)" : v) },
          { key: "calls", title: "Requests", type: "int" }, { key: "tokens_in", title: "Input tok.", type: "int" },
          { key: "tokens_out", title: "Output tok.", type: "int" }, { key: "tokens_total", title: "Total tok.", type: "int" },
          { key: "cost_usd", title: "Cost", type: "usd" }], t ? t.rows : [], { compact: true }));
    })));
  }

  /* ---------- refresh: the whole overview again every `refresh`, pausable ---------- */
  let timer = null;
  let paused = false;
  let running = false;
  let rounds = 0;

  async function loadAll(opts) {
    if (running) return;
    running = true;
    const jobs = [[cards, "cards"], [() => trend(opts), "chart-cost-time"], [models, "chart-model-tokens"], [latency, "chart-latency-model"], [tops, "top-tables"]];
    try {
      await Promise.all(jobs.map(([fn, where]) => fn().catch((e) => {
        const el = document.getElementById(where);
        GM.failed(el.tagName === "CANVAS" ? el.parentElement : el, e);
      })));
    } finally {
      running = false;
      rounds += 1;
      const stamp = document.getElementById("updated");
      stamp.textContent = time(new Date().toISOString(), true).slice(11);
      document.getElementById("refresh").dataset.rounds = String(rounds);
    }
  }
  function every() { const v = option("refresh", DEFAULT_REFRESH); return REFRESH[v] !== undefined ? v : DEFAULT_REFRESH; }
  function schedule(opts) {
    clearInterval(timer);
    const secs = REFRESH[every()];
    const on = secs > 0 && !paused && !document.hidden;
    const box = document.getElementById("refresh");
    box.dataset.state = secs === 0 ? "off" : (paused ? "paused" : "on");
    document.getElementById("refresh-pause").textContent = paused ? "Resume" : "Pause";
    document.getElementById("refresh-pause").disabled = secs === 0;
    if (on) timer = setInterval(() => loadAll(opts), secs * 1000);
  }
  function setupRefresh(opts) {
    const sel = document.getElementById("refresh-every");
    for (const k of Object.keys(REFRESH)) sel.append(h("option", { value: k, text: k, selected: k === every() }));
    sel.addEventListener("change", () => {
      const p = new URLSearchParams(location.search);
      p.set("refresh", sel.value);
      GM.params.set("refresh", sel.value);
      history.replaceState(null, "", location.pathname + "?" + p.toString());
      schedule(opts);
    });
    document.getElementById("refresh-pause").addEventListener("click", () => { paused = !paused; schedule(opts); });
    document.addEventListener("visibilitychange", () => schedule(opts));
  }

  GM.onReady(async () => {
    const opts = stackOptions();
    setupRefresh(opts);
    await loadAll(opts);
    schedule(opts);
  });
})();
