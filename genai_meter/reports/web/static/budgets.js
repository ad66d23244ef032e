/* Budgets (gauge by threshold state, actual spend and the forecast fan to the period end) and savings advice. */
"use strict";
(function () {
  const { h, api, usd, intf, num, roundDec } = GM;
  const C = GMCharts;
  const COLORS = { ok: "#16a34a", none: "#16a34a", info: "#ca8a04", warning: "#ea580c", critical: "#dc2626", exceeded: "#7f1d1d" };
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

  /* ---------- instants in the budget's own UTC offset ---------- */
  function offsetMs(b) {
    const m = /^([+-])(\d\d):(\d\d)$/.exec(b.utc_offset || "+00:00");
    return m ? (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) * 60000 : 0;
  }
  const zone = (b) => "UTC" + (b.utc_offset || "+00:00");
  function local(b, ms, withDate) {
    // "2026-12-07 12:20" (or "12:20") at the budget's offset, whatever the browser's time zone
    const s = new Date(ms + offsetMs(b)).toISOString();
    return withDate ? s.slice(0, 10) + " " + s.slice(11, 16) : s.slice(11, 16);
  }
  const at = (b, iso) => local(b, Date.parse(iso), true) + " (" + zone(b) + ")";
  function inTime(fromIso, toIso) {
    const mins = Math.round((Date.parse(toIso) - Date.parse(fromIso)) / 60000);
    if (mins < 1) return "within a minute";
    if (mins < 120) return "in " + mins + " min";
    if (mins < 72 * 60) return "in " + Math.round(mins / 60) + " h";
    return "in " + Math.round(mins / 1440) + " days";
  }
  const share = (b, v) => roundDec((100 * num(v) / num(b.limit)).toFixed(4), 0) + " %";

  function projectionLine(b) {
    const p = b.projection || {};
    const c = p.crossing || {};
    const end = p.end || b.projected_usd || b.projected_tokens;
    if (b.crossed_at) return ["exceeded", "crossed 100 % at " + at(b, b.crossed_at)];
    if (p.state === "will_exceed" && c.likely) {
      const early = c.aggressive && c.aggressive !== c.likely ? "; as early as " + local(b, Date.parse(c.aggressive), true) : "";
      const late = c.conservative ? (c.conservative !== c.likely ? ", as late as " + local(b, Date.parse(c.conservative), true) : "")
        : "; the conservative line stays below 100 %";
      return ["will_exceed", "projected to cross 100 % at " + at(b, c.likely) + ", " + inTime(b.now, c.likely) + early + late];
    }
    if (p.state === "may_exceed" && c.aggressive) {
      return ["may_exceed", "may cross 100 %: at the higher rate at " + at(b, c.aggressive) + "; likely " + share(b, end.likely) + " at period end"];
    }
    return ["within", "not expected to cross 100 % this period (likely " + (end ? share(b, end.likely) : "–") + " at period end)"];
  }

  function chart(b, canvasId) {
    const ch = b.chart;
    const pt = (t, v) => ({ x: Date.parse(t), y: num(v) });
    const proj = (i) => ch.projection.map((r) => pt(r[0], r[i]));
    const from = Date.parse(ch.from || b.from), to = Date.parse(ch.to || b.to);
    const series = [
      { label: "actual", data: ch.actual.map((r) => pt(r[0], r[1])), color: "#0f172a", width: 2.5 },
      { label: "aggressive", data: proj(3), color: "#f97316", dash: [4, 3], width: 1.5 },
      { label: "likely", data: proj(2), color: "#2563eb", dash: [6, 3] },
      { label: "conservative", data: proj(1), color: "#10b981", dash: [4, 3], width: 1.5, fill: "rgba(37, 99, 235, 0.12)", fillTo: 1 },
      { label: "limit", data: [{ x: from, y: num(b.limit) }, { x: to, y: num(b.limit) }], color: "#dc2626", width: 1 },
    ];
    const crossing = b.crossed_at || (b.projection && b.projection.crossing && b.projection.crossing.likely);
    if (crossing) {
      series.push({ label: b.crossed_at ? "crossed 100 %" : "crosses 100 % (likely)", data: [{ x: Date.parse(crossing), y: num(b.limit) }],
        color: "#7f1d1d", points: 5, showLine: false });
    }
    const withDate = b.period !== "day";
    const every = { day: 3 * 3600000, week: 86400000, month: 5 * 86400000 }[b.period] || 86400000;
    const ticks = [];
    for (let t = from; t <= to; t += every) ticks.push(t); // from the period start: local midnights and hours
    C.timeLines(canvasId, series, { money: b.unit === "usd", min: from, max: to, ticks,
      tick: (ms, full) => (full ? local(b, ms, true) + " " + zone(b) : (withDate ? local(b, ms, true).slice(5, 10) : local(b, ms, false))) });
  }

  async function budgets() {
    const box = document.getElementById("budgets");
    const data = await api("budgets", new URLSearchParams());
    if (!data.budgets.length) { box.replaceChildren(h("p", { class: "muted", text: "No budgets configured (or none visible to this token)." })); return; }
    box.replaceChildren(...data.budgets.map((b, i) => {
      const id = "chart-budget-" + i;
      const end = b.projection ? b.projection.end : (b.unit === "usd" ? b.projected_usd : b.projected_tokens);
      const match = Object.entries(b.match || {}).map(([k, v]) => k + "=" + v).join(", ") || "all calls";
      const [state, line] = projectionLine(b);
      const spent = b.unit === "usd" ? GM.money(b.spent, b, { exact: true }) : intf(b.spent) + " tokens";
      const panel = h("article", { class: "panel budget" + (state === "will_exceed" ? " at-risk" : ""),
        dataset: { budget: b.name, state: b.state, projection: state, crossing: (b.projection && b.projection.crossing.likely) || "" } },
        h("h3", {}, b.name, " ", h("span", { class: "muted", text: b.period + " " + b.period_label + " (" + zone(b) + ") · " + match })),
        h("div", { class: "gauge" }, gauge(b), h("div", { class: "figures" },
          h("div", { class: "status" }, h("strong", { class: "state-" + b.state, text: b.status || b.state })),
          h("div", {}, "spent ", spent, " of " + amount(b, b.limit) + " (" + roundDec(b.percent, 2) + " %)"),
          h("div", { class: "muted", text: "thresholds " + b.thresholds.join(" / ") + " %" }),
          h("div", { class: "projection proj-" + state, text: line }),
          end ? h("div", { text: "period end: " + amount(b, end.likely) + " (" + amount(b, end.conservative) + " – " + amount(b, end.aggressive) + ")" }) : null,
          h("div", { text: "daily average " + amount(b, b.daily_average) }))),
        b.projection ? h("p", { class: "muted method" }, "Projection: " + b.projection.method_text + ". ",
          state === "will_exceed" || state === "may_exceed" ? "Prometheus' LLMBudgetExhaustionForecast projects with the same run rate" +
            (b.projection.history_weight !== "0.00" ? " (without the history)" : "") + " and fires once it has stayed above 100 % for 15 minutes." : "") : null,
        h("figure", { class: "chart" }, h("div", { class: "canvas-box" }, h("canvas", { id }), h("p", { class: "empty", hidden: true, text: "No spend yet." }))));
      return panel;
    }));
    data.budgets.forEach((b, i) => { try { chart(b, "chart-budget-" + i); } catch (e) { GM.showNotice("Budget chart: " + e.message); } });
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
