/* Conversations: the list (calls, tokens, cost, duration) and one conversation's messages with the cost arithmetic. */
"use strict";
(function () {
  const { h, api, query, exact, intf, time, table, money, CONFIG } = GM;
  const CLASSES = ["input", "cache_read", "cache_write", "output", "reasoning"];
  const sumTokens = (t) => CLASSES.reduce((a, c) => a + (t[c] || 0), 0);
  const seconds = (s) => GM.roundDec(s, 2) + " s";

  async function list() {
    let cursors = [""];
    const box = document.getElementById("conversations");
    const columns = [
      { key: "conversation", title: "Conversation", type: "text", render: (v) => h("a", { href: "/conversations/" + encodeURIComponent(v) + location.search, text: v }) },
      { key: "calls", title: "Calls", type: "int" },
      { key: "tokens", title: "Tokens", type: "int", render: (t) => intf(sumTokens(t)) },
      { key: "cost_usd", title: "Cost", type: "usd", render: (v, c) => money(v, c) },
      { key: "duration_s", title: "Duration (sum)", type: "decimal", render: seconds },
      { key: "first_call", title: "Started", type: "time", render: (v) => time(v, true) },
      { key: "last_call", title: "Last call ended", type: "time", render: (v) => time(v, true) },
      { key: "models", title: "Models", type: "text", render: (v) => v.join(", ") },
      { key: "services", title: "Services", type: "text", render: (v) => v.join(", ") },
    ];
    async function load() {
      const page = await api("conversations", query({ limit: 25, cursor: cursors[cursors.length - 1] }));
      box.replaceChildren(table(columns, page.conversations, { empty: "No conversations in this range.", stack: true, cls: "convs" }));
      const next = document.getElementById("next");
      next.disabled = !page.next_cursor;
      next.dataset.next = page.next_cursor || "";
      document.getElementById("first").hidden = cursors.length === 1;
      document.getElementById("page-info").textContent = "page " + cursors.length;
    }
    document.getElementById("next").addEventListener("click", (e) => { if (e.target.dataset.next) { cursors.push(e.target.dataset.next); load(); } });
    document.getElementById("first").addEventListener("click", () => { cursors = [""]; load(); });
    await load().catch((e) => GM.failed(box, e));
  }

  function message(call, n) {
    const arith = table([
      { key: "class", title: "Token class", type: "text", render: (v) => v.replace("_", " ") },
      { key: "tokens", title: "Tokens", type: "int" },
      { key: "usd_per_million", title: "Rate (USD / 1M)", type: "text", render: (v) => (v === null ? "–" : "$" + v) },
      { key: "formula", title: "Arithmetic", type: "text", render: (v) => h("span", { class: "arith", text: v }) },
      { key: "cost_usd", title: "Cost", type: "text", render: (v) => (v === null || v === undefined || call.priced === false || call.unpriced ? "unpriced" : "$" + exact(v)) },
    ], call.arithmetic, { compact: true, empty: "No tokens." });
    const tok = call.tokens;
    return h("article", { class: "msg", dataset: { call: call.span_id } },
      h("div", { class: "msg-head" },
        h("strong", { text: "#" + n }), h("span", { text: time(call.time, true) }),
        h("span", { text: call.provider + "/" + call.model }), h("span", { class: "muted", text: call.operation + " · " + call.service }),
        h("span", { class: "muted", text: "duration " + seconds(call.duration_s) }),
        call.status !== "ok" ? h("span", { class: "error", text: call.error_type || call.status }) : null,
        h("span", { class: "cost" }, money(call.cost_usd, call, { exact: true }))),
      h("p", { class: "muted" }, "tokens: input " + intf(tok.input) + " · cache read " + intf(tok.cache_read) + " · cache write " +
        intf(tok.cache_write) + " · output " + intf(tok.output) + " · reasoning " + intf(tok.reasoning)),
      arith,
      h("p", { class: "muted" }, "price entry: ", h("code", { text: call.price_entry || "none" }),
        call.price_source ? " (" + call.price_source + (call.price_version ? ", " + call.price_version : "") + ")" : ""));
  }

  function startOf(call) {
    // The call's start, end - duration, to the nanosecond: the list's "Started" is the same instant
    // (the ledger's first_call), so both show the same second.
    const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(call.time);
    const [whole, frac = ""] = String(call.duration_s).split(".");
    const ns = BigInt(Date.parse(m[1] + "Z")) * 1000000n + BigInt((m[2] || "").padEnd(9, "0").slice(0, 9))
      - (BigInt(whole) * 1000000000n + BigInt(frac.padEnd(9, "0").slice(0, 9)));
    const secs = ns >= 0n ? ns / 1000000000n : (ns - 999999999n) / 1000000000n;
    return new Date(Number(secs) * 1000).toISOString();
  }
  const lastEnd = (calls) => calls.reduce((a, c) => (Date.parse(c.time) > Date.parse(a) ? c.time : a), calls[0].time);

  async function one() {
    const id = CONFIG.conversation;
    document.getElementById("conv-id").textContent = id;
    document.getElementById("back").href = "/conversations" + location.search;
    try {
      const conv = await api("conversations/" + encodeURIComponent(id), new URLSearchParams());
      const calls = conv.calls;
      const exactness = conv.calls_unpriced !== undefined ? conv : { // older answers: from its calls
        calls: calls.length, calls_unpriced: calls.filter((c) => GM.exactnessOf(c).unpriced).length,
        calls_upper_bound: calls.filter((c) => GM.exactnessOf(c).kind === "upper_bound").length };
      const dur = calls.reduce((a, c) => a + parseFloat(c.duration_s), 0);
      const users = [...new Set(calls.map((c) => c.user).filter(Boolean))];
      document.getElementById("conv-summary").replaceChildren(h("dl", { class: "kv" },
        h("dt", { text: "Messages" }), h("dd", { text: String(calls.length) }),
        h("dt", { text: "Total cost" }), h("dd", { id: "conv-cost" }, money(conv.cost_usd, exactness, { exact: true })),
        h("dt", { text: "Tokens" }), h("dd", { text: intf(sumTokens(conv.tokens)) }),
        h("dt", { text: "Duration (sum)" }), h("dd", { text: dur.toFixed(2) + " s" }),
        h("dt", { text: "Started – last call ended" }), h("dd", { id: "conv-span", text: calls.length ? time(startOf(calls[0]), true) + " – " + time(lastEnd(calls), true) : "" }),
        h("dt", { text: "Users" }), h("dd", { text: users.join(", ") || "–" })));
      document.getElementById("messages").replaceChildren(...calls.map((c, i) => message(c, i + 1)));
    } catch (e) {
      GM.failed("messages", e);
    }
  }

  GM.onReady(() => (CONFIG.page === "conversation" ? one() : list()));
})();
