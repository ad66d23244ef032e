/* genai-meter page core: token, URL state, API calls, formatting, filter bar, tables. No data lives here:
   every figure comes from /api/v1 with the bearer token kept in sessionStorage (never a cookie). */
"use strict";
(function () {
  const CONFIG = JSON.parse(document.getElementById("page-config").textContent);
  const TOKEN_KEY = "genai-meter-token";
  const RANGES = ["1h", "24h", "7d", "30d", "90d", "today", "this_month"];
  const params = new URLSearchParams(location.search);

  /* ---------- DOM helper: h("div", {class: "x"}, child, "text") ---------- */
  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  /* ---------- exact decimal text -> display, without float arithmetic on money ---------- */
  function roundDec(text, places) {
    // Round a decimal string half-up to `places` decimals, using BigInt.
    let s = String(text).trim();
    const neg = s.startsWith("-");
    if (neg) s = s.slice(1);
    const [ip, fp = ""] = s.split(".");
    const digits = BigInt(ip + fp.padEnd(places + 1, "0").slice(0, places + 1));
    let q = digits / 10n;
    if (digits % 10n >= 5n) q += 1n;
    let out = q.toString().padStart(places + 1, "0");
    out = places ? out.slice(0, -places) + "." + out.slice(-places) : out;
    const [a, b] = out.split(".");
    const grouped = a.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    const zero = /^[0.,]*$/.test(out);
    return (neg && !zero ? "-" : "") + grouped + (b !== undefined ? "." + b : "");
  }
  function exact(text) {
    // The exact figure, trailing zeros dropped (at least 2 decimals): "1.267826610000" -> "1.26782661".
    if (text === null || text === undefined) return "";
    let [a, b = ""] = String(text).split(".");
    b = b.replace(/0+$/, "");
    if (b.length < 2) b = b.padEnd(2, "0");
    return a + "." + b;
  }
  function usd(text, places) {
    // Rounded for display: 2 decimals from $100, 4 from $1, else 6; zeros past the cents dropped ($0.25, not $0.250000).
    if (text === null || text === undefined || text === "") return "–";
    const p = places !== undefined ? places : smartPlaces(text);
    let r = roundDec(text, p);
    if (p > 2) r = r.replace(/(\.\d\d\d*?)0+$/, "$1");
    return r.startsWith("-") ? "-$" + r.slice(1) : "$" + r;
  }
  function smartPlaces(text) {
    const v = Math.abs(parseFloat(text));
    if (v >= 100) return 2;
    if (v >= 1) return 4;
    return 6;
  }
  const intf = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
  const pct = (ratioText, places = 1) => (ratioText === null || ratioText === undefined ? "–" :
    roundDec(String(parseFloat(ratioText) * 100), places) + " %");
  const num = (text) => (text === null || text === undefined || text === "" ? 0 : parseFloat(text)); // charts only
  function time(iso, withSeconds) {
    if (!iso) return "";
    const d = new Date(iso);
    const pad = (x) => String(x).padStart(2, "0");
    const s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
    return withSeconds ? s + ":" + pad(d.getSeconds()) : s;
  }
  function cell(type, value) {
    if (value === null || value === undefined) return "–";
    if (type === "usd") return usd(value);
    if (type === "int") return intf(value);
    if (type === "ratio") return pct(value);
    if (type === "time") return time(value);
    if (type === "decimal") return roundDec(value, 2);
    return String(value);
  }

  /* ---------- exact, upper bound or unknown: the marker every money figure carries ---------- */
  // Reads the API's fields: calls_unpriced / calls_upper_bound / exactness on totals and rows, priced and a
  // null cost_usd on calls (older answers: unpriced / unpriced_calls / unmetered_calls).
  function exactnessOf(o, prefix) {
    const p = prefix || "";
    const n = (k) => (o && o[p + k] !== undefined && o[p + k] !== null && o[p + k] !== "" ? Number(o[p + k]) || 0 : null);
    let unpriced = n("calls_unpriced");
    if (unpriced === null) unpriced = (n("unpriced_calls") || 0) + (n("invalid_calls") || 0) + (n("unpriced") || 0);
    let bounded = n("calls_upper_bound");
    if (bounded === null) bounded = n("unmetered_calls") || 0;
    if (o && typeof o.unmetered === "string" && o.unmetered) { // one call: cache_unknown bounds it, no_usage leaves it unknown
      if (o.unmetered === "no_usage") unpriced = Math.max(unpriced, 1); else bounded = Math.max(bounded, 1);
    }
    if (o && (o.priced === false || o.invalid)) unpriced = Math.max(unpriced, 1);
    let kind = o && o[p + "exactness"];
    if (!kind) kind = unpriced ? "incomplete" : (bounded ? "upper_bound" : "exact");
    return { kind, unpriced, bounded };
  }
  function exactnessNote(e) {
    const parts = [];
    if (e.unpriced) parts.push(intf(e.unpriced) + (e.unpriced === 1 ? " call" : " calls") + " unpriced: not in this figure");
    if (e.bounded) parts.push(intf(e.bounded) + (e.bounded === 1 ? " call" : " calls") + " with unknown cache tokens or usage: an upper bound");
    return parts.join("; ");
  }
  // A money figure with its marker: "$1.25" (exact), "≤ $1.25" (upper bound), "≥ $1.25" (some calls unpriced),
  // "~$1.25" (both), "unpriced" (no priced call at all: never $0).
  function money(text, o, opts) {
    const e = exactnessOf(o || {}, opts && opts.prefix);
    const show = opts && opts.exact ? (t) => "$" + exact(t) : (t) => usd(t, opts && opts.places);
    const calls = o && o.span_id !== undefined ? 1 : (o && typeof o[(opts && opts.prefix || "") + "calls"] === "number" ? o[(opts && opts.prefix || "") + "calls"] : null);
    if (text === null || text === undefined || (calls && e.unpriced >= calls)) { // no priced call behind it: never $0
      return h("span", { class: "est est-unpriced", dataset: { exactness: "unpriced" }, title: exactnessNote(e) || "no price known", text: "unpriced" });
    }
    if (e.kind === "exact") return h("span", { dataset: { exactness: "exact" }, text: show(text) });
    const sign = e.kind === "upper_bound" ? "≤ " : (e.bounded ? "~" : "≥ ");
    return h("span", { class: "est est-" + e.kind.replace("_", "-"), dataset: { exactness: e.kind }, title: exactnessNote(e), text: sign + show(text) });
  }

  /* ---------- token ---------- */
  const token = {
    get: () => sessionStorage.getItem(TOKEN_KEY) || "",
    set: (t) => (t ? sessionStorage.setItem(TOKEN_KEY, t) : sessionStorage.removeItem(TOKEN_KEY)),
  };

  /* ---------- URL state: range, from/to, filters, page options ---------- */
  function rangeParams() {
    const out = new URLSearchParams();
    if (params.get("from")) {
      out.set("from", params.get("from"));
      if (params.get("to")) out.set("to", params.get("to"));
    } else {
      out.set("range", RANGES.includes(params.get("range")) ? params.get("range") : defaultRange());
    }
    return out;
  }
  const DEFAULT_RANGE = "7d"; // one default for every page; written into the URL on load
  function defaultRange() { return DEFAULT_RANGE; }
  function currentRange() { return params.get("from") ? "custom" : (RANGES.includes(params.get("range")) ? params.get("range") : defaultRange()); }
  function filters() {
    const out = {};
    for (const f of CONFIG.fields) {
      const vs = params.getAll(f).filter((v) => v !== "");
      if (vs.length) out[f] = vs;
    }
    return out;
  }
  function query(extra, opts) {
    const q = opts && opts.noRange ? new URLSearchParams() : rangeParams();
    if (!(opts && opts.noFilters)) for (const [f, vs] of Object.entries(filters())) for (const v of vs) q.append(f, v);
    for (const [k, v] of Object.entries(extra || {})) {
      if (Array.isArray(v)) for (const x of v) q.append(k, x);
      else if (v !== null && v !== undefined && v !== "") q.set(k, v);
    }
    return q;
  }
  function go(mutate) {
    const p = new URLSearchParams(location.search);
    mutate(p);
    location.assign(location.pathname + (p.toString() ? "?" + p.toString() : ""));
  }
  const option = (name, fallback) => params.get(name) || fallback;

  /* ---------- API ---------- */
  class ApiError extends Error {}
  function headers() {
    const t = token.get();
    return t ? { Authorization: "Bearer " + t } : {};
  }
  async function api(path, q) {
    const url = "/api/v1/" + path + (q && q.toString() ? "?" + q.toString() : "");
    const res = await fetch(url, { headers: headers(), credentials: "omit", cache: "no-store" });
    if (!res.ok) {
      let msg = res.status + " " + res.statusText;
      try { msg = (await res.json()).error.message; } catch (e) { /* not JSON */ }
      if (res.status === 401) showNotice("This service needs a valid access token: type it in the field at the top.");
      throw new ApiError(msg);
    }
    return res.json();
  }
  async function download(path, q, fallbackName) {
    const res = await fetch("/api/v1/" + path + "?" + q.toString(), { headers: headers(), credentials: "omit" });
    if (!res.ok) {
      let msg = res.status + "";
      try { msg = (await res.json()).error.message; } catch (e) { /* not JSON */ }
      throw new ApiError(msg);
    }
    const disp = res.headers.get("Content-Disposition") || "";
    const m = /filename="([^"]+)"/.exec(disp);
    const blob = await res.blob();
    const href = URL.createObjectURL(blob);
    const a = h("a", { href, download: m ? m[1] : fallbackName, hidden: true });
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(href); a.remove(); }, 5000);
    return blob.size;
  }
  function showNotice(text, kind) {
    const n = document.getElementById("notice");
    n.textContent = text;
    n.className = "notice " + (kind || "warn");
    n.hidden = !text;
  }
  function failed(container, err) {
    const box = typeof container === "string" ? document.getElementById(container) : container;
    if (box) box.replaceChildren(h("p", { class: "error", text: "Could not load: " + err.message }));
  }

  /* ---------- tables ---------- */
  function table(columns, rows, opts) {
    const o = opts || {};
    const head = h("tr", {}, columns.map((c) => h("th", { class: c.type === "text" || c.type === "time" ? "" : "num", scope: "col",
      dataset: { key: c.key } }, c.title)));
    const body = rows.map((r) => h("tr", {}, columns.map((c) => {
      const v = Array.isArray(r) ? r[columns.indexOf(c)] : r[c.key];
      let content;
      if (c.render) content = c.render(v, r);
      else if (c.type === "usd" && !Array.isArray(r)) content = moneyCell(c.key, v, r);
      else content = cell(c.type, v);
      return h("td", { class: (c.type === "text" || c.type === "time" ? "" : "num") + (c.cls ? " " + c.cls : ""),
        dataset: { label: c.title, key: c.key }, title: c.type === "usd" && v ? "$" + exact(v) : null }, content);
    })));
    const t = h("table", { class: "grid" + (o.compact ? " compact" : "") + (o.stack ? " stack" : "") + (o.cls ? " " + o.cls : "") },
      h("thead", {}, head), h("tbody", {}, body));
    if (!rows.length) t.append(h("caption", { text: o.empty || "No calls in this range." }));
    return h("div", { class: "scroll" }, t);
  }
  function moneyCell(key, value, row) {
    // A report row's money cell: its exactness (or the previous period's, for previous_* columns).
    const prefix = key.startsWith("previous_") ? "previous_" : "";
    const own = row[prefix + "exactness"] !== undefined || row[prefix + "calls_unpriced"] !== undefined;
    if (!own || key.startsWith("change_")) return cell("usd", value);
    if (value === null && Number(row[prefix + "calls_unpriced"] || 0) === 0) return "–";
    return money(value, row, { prefix });
  }
  function reportTable(tbl, keys) {
    const cols = keys ? tbl.columns.filter((c) => keys.includes(c.key)) : tbl.columns;
    return table(cols, tbl.rows);
  }

  /* ---------- filter bar ---------- */
  function setupFilterBar() {
    const bar = document.getElementById("filterbar");
    if (!bar) return;
    const active = currentRange();
    for (const b of bar.querySelectorAll("[data-range]")) {
      b.classList.toggle("active", b.dataset.range === active);
      b.addEventListener("click", () => {
        if (b.dataset.range === "custom") { document.getElementById("custom-range").hidden = false; return; }
        go((p) => { p.delete("from"); p.delete("to"); p.set("range", b.dataset.range); p.delete("cursor"); });
      });
    }
    const custom = document.getElementById("custom-range");
    const toLocal = (iso) => { const d = new Date(iso); d.setMinutes(d.getMinutes() - d.getTimezoneOffset()); return d.toISOString().slice(0, 16); };
    if (params.get("from")) {
      custom.hidden = false;
      document.getElementById("range-from").value = toLocal(params.get("from"));
      if (params.get("to")) document.getElementById("range-to").value = toLocal(params.get("to"));
    }
    document.getElementById("range-apply").addEventListener("click", () => {
      const f = document.getElementById("range-from").value;
      const t = document.getElementById("range-to").value;
      if (!f) { showNotice("Custom range: pick a start."); return; }
      const iso = (v) => new Date(v).toISOString().replace(/\.\d{3}Z$/, "Z");
      go((p) => { p.delete("range"); p.set("from", iso(f)); if (t) p.set("to", iso(t)); else p.delete("to"); });
    });
    const box = document.getElementById("filters");
    if (window.innerWidth < 600 && !Object.keys(filters()).length) document.getElementById("filter-box").open = false;
    const chips = document.getElementById("chips");
    const current = filters();
    for (const f of CONFIG.fields) {
      const sel = h("select", { "aria-label": "Filter by " + f, dataset: { field: f } }, h("option", { value: "", text: f + " …" }));
      sel.addEventListener("change", () => {
        if (!sel.value) return;
        go((p) => { if (!p.getAll(f).includes(sel.value)) p.append(f, sel.value); p.delete("cursor"); });
      });
      box.append(sel);
      const q = query({ limit: 200 }, {});
      q.delete(f);
      api("dimensions/" + encodeURIComponent(f) + "/values", q).then((d) => {
        for (const v of d.values) if (v !== "") sel.append(h("option", { value: v, text: v }));
        if (!d.values.filter((v) => v !== "").length && !current[f]) sel.hidden = true;
      }).catch(() => { sel.disabled = true; });
    }
    for (const [f, vs] of Object.entries(current)) {
      for (const v of vs) {
        chips.append(h("button", { type: "button", class: "chip", title: "Remove this filter", dataset: { field: f, value: v },
          onclick: () => go((p) => { const keep = p.getAll(f).filter((x) => x !== v); p.delete(f); for (const k of keep) p.append(f, k); }) },
        f + " = " + v + " ✕"));
      }
    }
  }

  /* ---------- token form ---------- */
  function setupToken() {
    const form = document.getElementById("token-form");
    const input = document.getElementById("token-input");
    const clear = document.getElementById("token-clear");
    if (!CONFIG.tokens_required && !token.get()) { form.hidden = true; return; }
    clear.hidden = !token.get();
    if (token.get()) input.placeholder = "token set (this tab)";
    form.addEventListener("submit", (e) => { e.preventDefault(); token.set(input.value.trim()); location.reload(); });
    clear.addEventListener("click", () => { token.set(""); location.reload(); });
  }

  function keepRangeInUrl() {
    // The range (default 7d) and filters live in the URL, and every tab link carries them.
    if (!params.get("from") && !RANGES.includes(params.get("range"))) {
      params.set("range", DEFAULT_RANGE);
      const p = new URLSearchParams(location.search);
      p.set("range", DEFAULT_RANGE);
      history.replaceState(null, "", location.pathname + "?" + p.toString());
    }
    const carry = new URLSearchParams();
    for (const k of ["range", "from", "to"]) if (params.get(k)) carry.set(k, params.get(k));
    for (const [f, vs] of Object.entries(filters())) for (const v of vs) carry.append(f, v);
    for (const a of document.querySelectorAll("nav.tabs a[data-nav]")) {
      a.href = a.getAttribute("href").split("?")[0] + (carry.toString() ? "?" + carry.toString() : "");
    }
  }

  const ready = [];
  function onReady(fn) { ready.push(fn); }
  document.addEventListener("DOMContentLoaded", () => {
    keepRangeInUrl();
    setupToken();
    if (CONFIG.tokens_required && !token.get()) {
      showNotice("This report service needs an access token: paste yours in the field at the top (kept in this tab only).");
      return;
    }
    setupFilterBar();
    for (const fn of ready) {
      Promise.resolve().then(fn).catch((e) => showNotice("Could not load the page: " + e.message));
    }
  });

  window.GM = { CONFIG, h, api, download, query, go, option, filters, currentRange, rangeParams, showNotice, failed,
    table, reportTable, cell, usd, exact, intf, pct, num, time, roundDec, onReady, token, params, money, exactnessOf,
    exactnessNote, DEFAULT_RANGE };
})();
