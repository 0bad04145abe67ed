// The transfer list: one row per upload or download with its progress bar
// (bytes, rate, time left) and Pause / Resume / Cancel, and one overall bar
// for the uploads.

import { $, el, formatBytes, formatDuration, errorText } from "./dom.js";
import { uploads } from "./upload.js";

const rows = new Map(); // transfer -> {item, bar, text, buttons, rate, last}
const STATE_TEXT = {
  queued: "Waiting", checking: "Checking what the server holds", uploading: "Uploading", completing: "Completing",
  downloading: "Downloading", paused: "Paused", interrupted: "Interrupted", done: "Done", failed: "Failed",
  cancelled: "Cancelled",
};

export function track(transfer, kind) {
  const bar = el("progress", { max: "1", value: "0", "data-testid": "transfer-progress",
    "aria-label": `${kind === "upload" ? "Upload" : "Download"} of ${transfer.key}` });
  const text = el("span", { className: "transfer-text", "data-testid": "transfer-text" });
  const state = el("span", { className: "transfer-state", "data-testid": "transfer-state" });
  const what = `${kind} of ${transfer.key}`;
  const pause = el("button", { type: "button", "data-testid": "transfer-pause", "aria-label": `Pause ${what}`,
    onclick: () => transfer.pause() }, "Pause");
  const resume = el("button", { type: "button", "data-testid": "transfer-resume", "aria-label": `Resume ${what}`,
    onclick: () => transfer.start() }, "Resume");
  const cancel = kind === "upload"
    ? el("button", { type: "button", className: "danger", "data-testid": "transfer-cancel", "aria-label": `Cancel ${what}`,
      onclick: () => transfer.cancel() }, "Cancel")
    : null;
  const save = kind === "download" ? el("a", { className: "button", "data-testid": "transfer-save", hidden: true }, "Save") : null;
  const item = el("li", { className: "transfer", "data-testid": `${kind}-item`, "data-key": transfer.key },
    el("div", { className: "transfer-head" },
      el("span", { className: "transfer-name" }, kind === "upload" ? "↑ " : "↓ ", transfer.key),
      state),
    bar, text, el("div", { className: "transfer-buttons" }, pause, resume, cancel, save));
  $("transfer-list").prepend(item);
  $("transfers").hidden = false;
  const row = { item, bar, text, state, pause, resume, cancel, save, rate: 0, last: null, kind, saved: false };
  rows.set(transfer, row);
  transfer.addEventListener("change", () => render(transfer));
  render(transfer);
}

function render(t) {
  const row = rows.get(t);
  if (!row) return;
  const active = ["uploading", "downloading", "checking", "completing", "queued"].includes(t.state);
  row.bar.max = Math.max(1, t.total);
  row.bar.value = t.state === "done" ? row.bar.max : t.loaded;
  row.state.textContent = STATE_TEXT[t.state] || t.state;
  row.item.dataset.state = t.state;
  row.item.dataset.loaded = String(t.loaded);
  if (row.kind === "upload" && t.multipart) {
    row.item.dataset.parts = String(t.partCount);
    row.item.dataset.held = String(t.heldAtStart);
  }
  let line = `${formatBytes(t.loaded)} of ${formatBytes(t.total)}`;
  if (active && row.rate > 0) line += ` · ${formatBytes(row.rate)}/s · ${formatDuration((t.total - t.loaded) / row.rate)} left`;
  if (row.kind === "upload" && t.multipart && t.state !== "done") {
    line += ` · ${t.done.size} of ${t.partCount} parts${t.heldAtStart ? ` (${t.heldAtStart} already on the server)` : ""}`;
  }
  if (t.error && t.state !== "done") line += ` · ${errorText(t.error)}`;
  row.text.textContent = line;
  row.pause.hidden = !active || t.state === "completing";
  row.resume.hidden = !["paused", "failed", "interrupted"].includes(t.state);
  if (row.cancel) row.cancel.hidden = ["done", "cancelled"].includes(t.state);
  if (row.save && t.state === "done" && t.url) {
    row.save.hidden = false;
    row.save.href = t.url;
    row.save.download = t.name;
    row.save.textContent = `Save ${t.name}`;
    if (!row.saved) { row.saved = true; row.save.click(); }
  }
  if (row.kind === "upload") renderOverall();
}

/** Rates: a moving average of the bytes per second, sampled twice a second. */
setInterval(() => {
  const now = performance.now();
  for (const [t, row] of rows) {
    if (row.last) {
      const dt = (now - row.last.at) / 1000;
      const speed = Math.max(0, (t.loaded - row.last.loaded) / dt);
      row.rate = row.rate ? row.rate * 0.7 + speed * 0.3 : speed;
    }
    row.last = { at: now, loaded: t.loaded };
    render(t);
  }
}, 500);

function renderOverall() {
  const live = uploads.filter(u => u.state !== "cancelled");
  const total = live.reduce((n, u) => n + u.total, 0);
  const loaded = live.reduce((n, u) => n + u.loaded, 0);
  const bar = $("overall-progress");
  bar.max = Math.max(1, total);
  bar.value = loaded;
  const active = live.filter(u => !["done", "failed", "paused"].includes(u.state)).length;
  const rate = Array.from(rows).filter(([t, r]) => r.kind === "upload" && uploads.includes(t))
    .reduce((n, [, r]) => n + r.rate, 0);
  let text = `${formatBytes(loaded)} of ${formatBytes(total)} · ${live.filter(u => u.state === "done").length} of ${live.length} files done`;
  if (active && rate > 0) text += ` · ${formatBytes(rate)}/s · ${formatDuration((total - loaded) / rate)} left`;
  $("overall-text").textContent = text;
}

export function clearFinished() {
  for (const [t, row] of rows) {
    if (["done", "cancelled"].includes(t.state)) {
      row.item.remove();
      rows.delete(t);
      if (row.kind === "upload") uploads.splice(uploads.indexOf(t), 1);
      else t.release?.();
    }
  }
  renderOverall();
  if (!rows.size) $("transfers").hidden = true;
}

/** Sign-out: every transfer paused and forgotten, so the next person sees none. */
export function forgetAll() {
  for (const [t, row] of rows) {
    t.pause();
    row.item.remove();
    t.release?.();
  }
  rows.clear();
  uploads.splice(0, uploads.length);
  renderOverall();
  $("transfers").hidden = true;
}
