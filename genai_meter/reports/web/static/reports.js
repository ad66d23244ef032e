/* Report builder: report, range, filters, grouping -> preview table (JSON) and downloads in every format. */
"use strict";
(function () {
  const { h, api, query, option, table, exact, CONFIG } = GM;
  const KINDS = ["summary", "detailed", "cost", "trend"];

  function reportQuery(extra) {
    const groups = GM.params.getAll("group_by").filter((g) => CONFIG.fields.includes(g));
    return query({ group_by: groups, step: option("step", ""), compare: option("compare", ""), ...(extra || {}) });
  }
  function kind() { return KINDS.includes(option("kind", "")) ? option("kind") : "summary"; }

  function setupForm() {
    const groups = GM.params.getAll("group_by");
    for (const [i, id] of [[0, "group1"], [1, "group2"]].map(([a, b]) => [a, b])) {
      const sel = document.getElementById(id);
      sel.append(h("option", { value: "", text: "(none)" }));
      for (const f of CONFIG.fields) sel.append(h("option", { value: f, text: f, selected: groups[i] === f }));
    }
    document.getElementById("kind").value = kind();
    document.getElementById("rstep").value = option("step", "");
    document.getElementById("compare").value = option("compare", "");
    document.getElementById("builder").addEventListener("submit", (e) => {
      e.preventDefault();
      GM.go((p) => {
        p.set("kind", document.getElementById("kind").value);
        p.delete("group_by");
        for (const id of ["group1", "group2"]) {
          const v = document.getElementById(id).value;
          if (v && !p.getAll("group_by").includes(v)) p.append("group_by", v);
        }
        for (const [name, id] of [["step", "rstep"], ["compare", "compare"]]) {
          const v = document.getElementById(id).value;
          if (v) p.set(name, v); else p.delete(name);
        }
      });
    });
    const status = document.getElementById("download-status");
    for (const b of document.querySelectorAll("#downloads [data-format]")) {
      b.addEventListener("click", async () => {
        const fmt = b.dataset.format;
        status.textContent = "preparing " + fmt.toUpperCase() + "…";
        try {
          const size = await GM.download("reports/" + kind(), reportQuery({ format: fmt }), `genai-meter-${kind()}.${fmt === "focus" ? "csv" : fmt}`);
          status.textContent = fmt.toUpperCase() + " downloaded (" + size.toLocaleString("en-US") + " bytes)";
        } catch (e) {
          status.textContent = fmt.toUpperCase() + " failed: " + e.message;
        }
      });
    }
  }

  async function preview() {
    const box = document.getElementById("preview");
    try {
      const rep = await api("reports/" + kind(), reportQuery());
      document.getElementById("preview-title").textContent = rep.title;
      const filters = Object.entries(rep.filters).map(([k, v]) => k + " = " + v.join(" | ")).join(", ") || "none";
      const e = GM.exactnessOf(rep.summary);
      const note = e.kind === "exact" ? (rep.summary.cost_usd !== null ? ` (exact $${exact(rep.summary.cost_usd)})` : "")
        : ` (${e.kind.replace("_", " ")}: ${GM.exactnessNote(e)})`;
      document.getElementById("preview-meta").replaceChildren(`${GM.time(rep.from)} – ${GM.time(rep.to)} · filters: ${filters} · ` +
        `${rep.summary.calls.toLocaleString("en-US")} calls · `, GM.money(rep.summary.cost_usd, rep.summary), note);
      const names = Object.keys(rep.tables);
      const order = [rep.group_by.length && rep.tables.groups ? "groups" : null, ...names].filter((n, i, a) => n && a.indexOf(n) === i);
      box.replaceChildren(...order.map((n) => {
        const t = rep.tables[n];
        return h("div", { class: "report-table", dataset: { table: n } }, h("h3", { text: t.title }), table(t.columns, t.rows, { compact: true }),
          t.note ? h("p", { class: "muted", text: t.note }) : null);
      }));
    } catch (e) {
      GM.failed(box, e);
    }
  }

  GM.onReady(() => { setupForm(); return preview(); });
})();
