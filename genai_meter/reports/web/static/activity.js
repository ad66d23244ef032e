/* Live activity feed: the newest calls, polled every second on the first page, filterable, paged by cursor. */
"use strict";
(function () {
  const { h, api, query, intf, time, table, money } = GM;
  const POLL_MS = 1000;
  let cursors = [""]; // cursor of each page shown so far; the last is the current page
  let paused = false;
  let seen = null;
  let timer = null;
  let busy = false;

  const limit = () => document.getElementById("limit").value;
  const id = (c) => c.trace_id + ":" + c.span_id;
  const dim = (c, f) => (f === "user" ? c.user : (c.dimensions || {})[f] || "");
  const clip = (text) => h("span", { class: "clip", title: text, text });
  const columns = [
    { key: "time", title: "Time", type: "time", render: (v) => time(v, true) },
    { key: "service", title: "Service", type: "text", render: (v) => clip(v) },
    { key: "customer", title: "Customer", type: "text", render: (_, c) => clip(dim(c, "customer")) },
    { key: "user", title: "User", type: "text", render: (_, c) => clip(dim(c, "user")) },
    { key: "feature", title: "Feature", type: "text", render: (_, c) => clip(dim(c, "feature")) },
    { key: "model", title: "Model", type: "text", render: (v) => clip(v) },
    { key: "tokens_in", title: "In tok.", type: "int", render: (_, c) => intf(c.tokens.input + c.tokens.cache_read + c.tokens.cache_write) },
    { key: "tokens_out", title: "Out tok.", type: "int", render: (_, c) => intf(c.tokens.output + c.tokens.reasoning) },
    { key: "cost_usd", title: "Cost", type: "usd", render: (v, c) => money(v, c) },
    { key: "status", title: "Status", type: "text", render: (v, c) => (v === "ok" ? "ok" : h("span", { class: "error", text: c.error_type || v })) },
    { key: "conversation", title: "Conversation", type: "text", cls: "conv",
      render: (v) => (v ? h("a", { class: "clip", title: v, href: "/conversations/" + encodeURIComponent(v) + location.search, text: v }) : "") },
  ];

  async function load() {
    if (busy) return;
    busy = true;
    try {
      const cursor = cursors[cursors.length - 1];
      const page = await api("events", query({ limit: limit(), cursor }));
      const box = document.getElementById("feed");
      const grid = table(columns, page.calls, { empty: "No calls in this range yet.", stack: true, cls: "feed" });
      const rows = grid.querySelectorAll("tbody tr");
      page.calls.forEach((c, i) => {
        rows[i].dataset.call = id(c);
        if (seen && !seen.has(id(c))) rows[i].classList.add("fresh");
      });
      seen = new Set(page.calls.map(id));
      box.replaceChildren(grid);
      box.dataset.updated = String(Date.now());
      document.getElementById("older").disabled = !page.next_cursor;
      document.getElementById("older").dataset.next = page.next_cursor || "";
      document.getElementById("newest").hidden = cursors.length === 1;
      document.getElementById("page-info").textContent = "page " + cursors.length;
    } catch (e) {
      GM.failed("feed", e);
    } finally {
      busy = false;
    }
  }
  function live() {
    const on = cursors.length === 1 && !paused && !document.hidden;
    document.getElementById("live").classList.toggle("paused", !on);
    document.getElementById("live-text").textContent = on ? "live, every second" : (paused ? "paused" : "older page: not updating");
    clearInterval(timer);
    if (on) timer = setInterval(load, POLL_MS);
  }
  GM.onReady(async () => {
    const lim = document.getElementById("limit");
    lim.value = GM.option("limit", "25");
    lim.addEventListener("change", () => { cursors = [""]; seen = null; load(); });
    document.getElementById("pause").addEventListener("click", (e) => {
      paused = !paused;
      e.target.textContent = paused ? "Resume" : "Pause";
      live();
    });
    document.getElementById("older").addEventListener("click", (e) => {
      if (!e.target.dataset.next) return;
      cursors.push(e.target.dataset.next);
      seen = null;
      load().then(live);
    });
    document.getElementById("newest").addEventListener("click", () => { cursors = [""]; seen = null; load().then(live); });
    document.addEventListener("visibilitychange", live);
    await load();
    live();
  });
})();
