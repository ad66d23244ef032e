/* Reconciliation: the providers' own usage and cost reports against the ledger (GET /api/v1/reconciliation).
   Cards (both sides, the difference, rows by cause), the drift per day as a chart, the rows with their
   cause and explanation, and what each cause means. Money is shown from the API's exact decimal strings. */
"use strict";
(function () {
  const { h, api, query, go, params, table, intf, roundDec, exact } = GM;

  function usd6(text) {
    // Six decimals, so an exact day reads $0.000000 and a cent-sized gap reads in full.
    if (text === null || text === undefined) return "–";
    const r = roundDec(text, 6);
    return r.startsWith("-") ? "-$" + r.slice(1) : "$" + r;
  }
  const pct = (text) => (text === null || text === undefined ? "–" : roundDec(text, 2) + " %");
  const words = (name) => name.replace(/_/g, " ");

  function reconQuery(extra) {
    return query({ provider: params.get("provider") || "", ...(extra || {}) }, { noFilters: true });
  }

  function setupBar() {
    const active = params.get("from") ? "" : (params.get("range") || GM.DEFAULT_RANGE);
    for (const b of document.querySelectorAll("#recon-ranges [data-range]")) {
      b.classList.toggle("active", b.dataset.range === active);
      b.addEventListener("click", () => go((p) => { p.delete("from"); p.delete("to"); p.set("range", b.dataset.range); }));
    }
    const from = document.getElementById("recon-from");
    const to = document.getElementById("recon-to");
    if (params.get("from")) from.value = params.get("from").slice(0, 10);
    if (params.get("to")) to.value = params.get("to").slice(0, 10);
    document.getElementById("recon-apply").addEventListener("click", () => {
      if (!from.value) { GM.showNotice("Pick the first day."); return; }
      go((p) => { p.delete("range"); p.set("from", from.value); if (to.value) p.set("to", to.value); else p.delete("to"); });
    });
    const status = document.getElementById("recon-download-status");
    for (const b of document.querySelectorAll("#recon-downloads [data-format]")) {
      b.addEventListener("click", async () => {
        const fmt = b.dataset.format;
        status.textContent = "preparing " + fmt.toUpperCase() + "…";
        try {
          const size = await GM.download("reconciliation", reconQuery({ format: fmt }), "genai-meter-reconciliation." + fmt);
          status.textContent = fmt.toUpperCase() + " downloaded (" + size.toLocaleString("en-US") + " bytes)";
        } catch (e) {
          status.textContent = fmt.toUpperCase() + " failed: " + e.message;
        }
      });
    }
  }

  function providers(body) {
    const sel = document.getElementById("recon-provider");
    const names = [...new Set(body.days_covered.map((d) => d.provider).concat(params.getAll("provider")))].sort();
    for (const name of names) sel.append(h("option", { value: name, text: name, selected: params.get("provider") === name }));
    sel.addEventListener("change", () => go((p) => { if (sel.value) p.set("provider", sel.value); else p.delete("provider"); }));
  }

  function cards(body) {
    const t = body.totals;
    const causes = Object.entries(t.causes).map(([c, n]) => intf(n) + " " + words(c)).join(" · ") || "no rows";
    const days = new Set(body.days_covered.map((d) => d.day)).size;
    const card = (title, value, sub, key) => h("div", { class: "card", dataset: { card: key } }, h("h3", { text: title }),
      h("p", { class: "value exact", text: value }), h("p", { class: "sub", text: sub }));
    document.getElementById("recon-cards").replaceChildren(
      card("Provider's cost", usd6(t.cost_provider_usd), intf(t.requests_provider) + " requests reported", "provider"),
      card("Ledger's cost", usd6(t.cost_ledger_usd), intf(t.requests_ledger) + " calls metered", "ledger"),
      card("Difference", usd6(t.difference_usd), pct(t.difference_pct) + " of the provider's cost", "difference"),
      card("Rows", intf(t.rows), causes, "rows"),
      card("Days covered", intf(days), body.from + " to " + body.to + (days ? "" : ": import or pull a report"), "days"));
  }

  function drift(body) {
    const labels = body.drift.map((d) => d.day);
    GMCharts.lines("chart-drift", labels, [
      { label: "Difference", data: body.drift.map((d) => GM.num(d.difference_usd)), color: "#dc2626", width: 3, points: true },
      { label: "Provider's cost", data: body.drift.map((d) => GM.num(d.cost_provider_usd)), color: "#2563eb", dash: [4, 3] },
      { label: "Ledger's cost", data: body.drift.map((d) => GM.num(d.cost_ledger_usd)), color: "#10b981", dash: [2, 2] },
    ], { money: true });
  }

  function rows(body) {
    const meaning = Object.fromEntries(body.causes.map((c) => [c.cause, c]));
    const cause = (v) => h("a", { class: "cause cause-" + v, href: "#cause-" + v, title: meaning[v] ? meaning[v].meaning : "",
      dataset: { cause: v } }, words(v));
    const money = (v) => h("span", { title: v === null ? "" : "$" + exact(v), text: usd6(v) });
    const columns = [
      { key: "day", title: "Day (UTC)", type: "text" }, { key: "provider", title: "Provider", type: "text" },
      { key: "model", title: "Model", type: "text", render: (v, r) => h("span", { class: "clip", title: (r.provider_models || []).concat(r.ledger_models || []).join(", "), text: v || "(no model)" }) },
      { key: "requests_provider", title: "Requests (provider)", type: "int" },
      { key: "requests_ledger", title: "Requests (ledger)", type: "int" },
      { key: "cost_provider_usd", title: "Cost (provider)", type: "text", cls: "num", render: money },
      { key: "cost_ledger_usd", title: "Cost (ledger)", type: "text", cls: "num", render: money },
      { key: "difference_usd", title: "Difference", type: "text", cls: "num diff", render: money },
      { key: "difference_pct", title: "%", type: "text", cls: "num", render: (v) => pct(v) },
      { key: "cause", title: "Cause", type: "text", render: cause },
      { key: "explanation", title: "Explanation", type: "text", cls: "why" },
    ];
    const box = document.getElementById("recon-table");
    box.replaceChildren(table(columns, body.rows, { stack: true, cls: "recon",
      empty: "No provider report covers these days: `genai-meter reconcile import FILE` or `reconcile pull` first." }));
    box.querySelectorAll("tbody tr").forEach((tr, i) => { tr.dataset.cause = body.rows[i].cause; tr.dataset.day = body.rows[i].day; });
  }

  function causes(body) {
    const counts = body.totals.causes;
    document.getElementById("recon-causes").replaceChildren(h("dl", { class: "causes" }, body.causes.flatMap((c) => [
      h("dt", { id: "cause-" + c.cause }, h("span", { class: "cause cause-" + c.cause, text: words(c.cause) }), " ", c.title,
        h("span", { class: "muted", text: " · " + intf(counts[c.cause] || 0) + ((counts[c.cause] || 0) === 1 ? " row" : " rows") })),
      h("dd", {}, h("p", { text: c.meaning }), h("p", {}, h("strong", { text: "What to do: " }), c.action)),
    ])));
  }

  async function load() {
    try {
      const body = await api("reconciliation", reconQuery());
      providers(body);
      cards(body);
      drift(body);
      rows(body);
      causes(body);
    } catch (e) {
      for (const id of ["recon-cards", "recon-table", "recon-causes"]) GM.failed(id, e);
    }
  }

  GM.onReady(() => { setupBar(); return load(); });
})();
