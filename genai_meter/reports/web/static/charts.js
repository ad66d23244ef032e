/* Chart helpers over the vendored Chart.js: one palette, responsive, and a data-points count on every
   canvas (tests and people can see a chart has drawn data). Values are rounded for display only. */
"use strict";
(function () {
  const PALETTE = ["#2563eb", "#f97316", "#10b981", "#a855f7", "#ef4444", "#0ea5e9", "#eab308", "#ec4899",
    "#14b8a6", "#6366f1", "#84cc16", "#64748b"];
  const charts = {};
  if (window.Chart) {
    Chart.defaults.font.family = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
    Chart.defaults.font.size = 11;
    Chart.defaults.color = "#475569";
    Chart.defaults.animation = false;
    Chart.defaults.maintainAspectRatio = false;
  }
  const color = (i) => PALETTE[i % PALETTE.length];

  function draw(id, config) {
    const canvas = document.getElementById(id);
    if (!canvas) return null;
    if (charts[id]) charts[id].destroy();
    const points = config.data.datasets.reduce((n, d) => n + d.data.filter((v) => v !== null && v !== 0 &&
      !(typeof v === "object" && v !== null && (v.y === 0 || v.y === null))).length, 0);
    canvas.dataset.points = String(points);
    charts[id] = new Chart(canvas, config);
    const empty = canvas.parentElement.querySelector(".empty");
    if (empty) empty.hidden = points > 0;
    return charts[id];
  }
  function money(v) { return "$" + (Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3)); }
  function compact(v) { return Intl.NumberFormat("en-US", { notation: "compact" }).format(v); }

  function stackedBar(id, labels, series, opts) {
    const o = opts || {};
    return draw(id, {
      type: "bar",
      data: { labels, datasets: series.map((s, i) => ({ label: s.label, data: s.data, backgroundColor: color(i), stack: "s" })) },
      options: {
        responsive: true, interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 10 } },
          tooltip: { callbacks: { label: (c) => c.dataset.label + ": " + (o.money ? money(c.parsed.y) : compact(c.parsed.y)) } } },
        scales: { x: { stacked: true, ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } },
          y: { stacked: true, beginAtZero: true, ticks: { callback: (v) => (o.money ? money(v) : compact(v)) } } },
      },
    });
  }
  function bars(id, labels, series, opts) {
    const o = opts || {};
    return draw(id, {
      type: "bar",
      data: { labels, datasets: series.map((s, i) => ({ label: s.label, data: s.data, backgroundColor: s.color || color(i) })) },
      options: {
        responsive: true, indexAxis: o.horizontal ? "y" : "x",
        plugins: { legend: { display: series.length > 1, position: "bottom", labels: { boxWidth: 10 } },
          tooltip: { callbacks: { label: (c) => c.dataset.label + ": " + fmt(o, o.horizontal ? c.parsed.x : c.parsed.y) } } },
        scales: { [o.horizontal ? "x" : "y"]: { beginAtZero: true, ticks: { callback: (v) => fmt(o, v) } },
          [o.horizontal ? "y" : "x"]: { ticks: { autoSkip: false, maxRotation: 45 } } },
      },
    });
  }
  function fmt(o, v) { return o.money ? money(v) : (o.unit ? (Math.round(v * 1000) / 1000) + " " + o.unit : compact(v)); }
  function doughnut(id, labels, values, opts) {
    const o = opts || {};
    const total = values.reduce((a, b) => a + b, 0);
    return draw(id, {
      type: "doughnut",
      data: { labels, datasets: [{ data: values, backgroundColor: labels.map((_, i) => color(i)), borderWidth: 1 }] },
      options: {
        responsive: true, cutout: "55%",
        plugins: { legend: { position: "right", labels: { boxWidth: 10 } },
          tooltip: { callbacks: { label: (c) => c.label + ": " + (total ? (100 * c.parsed / total).toFixed(1) : "0") + " % (" +
            (o.money ? money(c.parsed) : compact(c.parsed)) + ")" } } },
      },
    });
  }
  function lines(id, labels, series, opts) {
    const o = opts || {};
    return draw(id, {
      type: "line",
      data: { labels, datasets: series.map((s, i) => ({ label: s.label, data: s.data, borderColor: s.color || color(i),
        backgroundColor: s.fill || "transparent", fill: s.fillTo !== undefined ? s.fillTo : false, pointRadius: s.points ? 2 : 0,
        borderDash: s.dash || [], borderWidth: s.width || 2, spanGaps: true })) },
      options: {
        responsive: true, interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 10 } },
          tooltip: { callbacks: { label: (c) => c.dataset.label + ": " + (c.parsed.y === null ? "–" : fmt(o, c.parsed.y)) } } },
        scales: { x: { ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 8 } },
          y: { beginAtZero: true, ticks: { callback: (v) => fmt(o, v) } } },
      },
    });
  }
  // Lines over a time axis: points {x: Unix ms, y}, the x axis linear (evenly spaced in time), ticks written by
  // `opts.tick(ms)` (e.g. in a budget's own UTC offset).
  function timeLines(id, series, opts) {
    const o = opts || {};
    return draw(id, {
      type: "line",
      data: { datasets: series.map((s, i) => ({ label: s.label, data: s.data, borderColor: s.color || color(i),
        backgroundColor: s.fill || s.color || "transparent", fill: s.fillTo !== undefined ? s.fillTo : false,
        pointRadius: s.points || 0, pointHoverRadius: s.points ? s.points + 2 : 3, showLine: s.showLine !== false,
        borderDash: s.dash || [], borderWidth: s.width || 2 })) },
      options: {
        responsive: true, parsing: false, normalized: true, interaction: { mode: "nearest", axis: "x", intersect: false },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 10 } },
          tooltip: { callbacks: { title: (items) => (items.length ? o.tick(items[0].parsed.x, true) : ""),
            label: (c) => c.dataset.label + ": " + fmt(o, c.parsed.y) } } },
        scales: { x: { type: "linear", min: o.min, max: o.max, ticks: { maxRotation: 0, autoSkip: true, maxTicksLimit: 9,
          callback: (v) => o.tick(v, false) },
          afterBuildTicks: (axis) => { if (o.ticks) axis.ticks = o.ticks.map((value) => ({ value })); } },
          y: { beginAtZero: true, ticks: { callback: (v) => fmt(o, v) } } },
      },
    });
  }
  window.GMCharts = { draw, stackedBar, bars, doughnut, lines, timeLines, color, charts };
})();
