// The storage overview: figures from GET /api/overview and an inline SVG bar
// chart of the bytes in each bucket.

import { $, el, formatBytes, say, errorText } from "./dom.js";
import { overview } from "./api.js";

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

export async function showOverview() {
  let data;
  try {
    data = await overview();
  } catch (e) {
    say(`Could not load the overview: ${errorText(e)}`, true);
    return;
  }
  const buckets = data.buckets || [];
  const up = data.uploads || {};
  const st = data.storage || {};
  const figure = (label, value, testid) => el("div", { className: "figure" },
    el("span", { className: "figure-value", "data-testid": testid }, value), el("span", { className: "figure-label" }, label));
  const objects = buckets.reduce((n, b) => n + b.objects, 0);
  $("overview-figures").replaceChildren(
    figure("buckets", String(buckets.length), "ov-buckets"),
    figure(`in ${objects} objects`, formatBytes(st.logical_bytes ?? buckets.reduce((n, b) => n + b.bytes, 0)), "ov-logical"),
    figure("stored on disk", st.stored_bytes == null ? "—" : formatBytes(st.stored_bytes), "ov-stored"),
    figure("deduplication ratio", st.dedup_ratio == null ? "—" : `${Number(st.dedup_ratio).toFixed(2)} : 1`, "ov-dedup"),
    figure(`unfinished uploads (${up.parts ?? 0} parts)`, `${up.count ?? 0} · ${formatBytes(up.bytes ?? 0)}`, "ov-uploads"),
  );
  $("overview-chart").replaceChildren(chart(buckets, up));
}

/** Horizontal bars: one per bucket, and one for the unfinished uploads. */
function chart(buckets, uploads) {
  const rows = buckets.map(b => ({ label: b.name, bytes: b.bytes, note: `${b.objects} objects`, kind: "bucket" }));
  if (uploads.count) rows.push({ label: "unfinished uploads", bytes: uploads.bytes, note: `${uploads.parts} parts`, kind: "uploads" });
  if (!rows.length) return el("p", { className: "empty" }, "No buckets yet.");
  const width = 640, labelW = 170, valueW = 150, barH = 22, gap = 10;
  const height = rows.length * (barH + gap) + gap;
  const max = Math.max(1, ...rows.map(r => r.bytes));
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": rows.map(r => `${r.label}: ${formatBytes(r.bytes)}`).join("; "), "data-testid": "overview-svg" });
  rows.forEach((r, i) => {
    const y = gap + i * (barH + gap);
    const w = Math.max(2, ((width - labelW - valueW) * r.bytes) / max);
    const g = svg("g", { "data-testid": "overview-bar", "data-bucket": r.label, "data-bytes": r.bytes });
    g.append(svg("title", {}, `${r.label}: ${r.bytes} bytes, ${r.note}`));
    g.append(svg("text", { x: labelW - 8, y: y + barH * 0.7, "text-anchor": "end", class: "chart-label" },
      r.label.length > 22 ? `${r.label.slice(0, 21)}…` : r.label));
    g.append(svg("rect", { x: labelW, y, width: w, height: barH, rx: 3, class: `chart-bar ${r.kind}` }));
    g.append(svg("text", { x: labelW + w + 6, y: y + barH * 0.7, class: "chart-value" }, `${formatBytes(r.bytes)} · ${r.note}`));
    root.append(g);
  });
  return root;
}
