// What the browser scenarios' drivers share: "ok"/"FAIL" check lines, a
// poll, Chromium's flags, and the run itself (a watchdog, a failure for an
// exception, the summary line, the exit status).

import { createHash } from "node:crypto";

/** Flags for Debian's Chromium, headless, as root, with no background traffic. */
export const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

let failures = 0;

/** Prints an "ok" or "FAIL" line (with details when it failed); returns `condition`. */
export function check(label, condition, ...details) {
  console.log(`  ${condition ? "ok  " : "FAIL"}  ${label}`);
  if (!condition) {
    failures++;
    for (const line of details) console.log(`        ${line}`);
  }
  return condition;
}

export const sleep = ms => new Promise(r => setTimeout(r, ms));
export const sha256 = bytes => createHash("sha256").update(bytes).digest("hex");

/** Polls fn until it is truthy (or the time is up); returns its last value. */
export async function until(fn, ms = 30_000, every = 100) {
  const end = Date.now() + ms;
  let value;
  while (!(value = await fn()) && Date.now() < end) await sleep(every);
  return value;
}

/** Runs `main` as scenario `name` within `timeLimitMs`, then exits 0 if every check passed. */
export async function runScenario(name, timeLimitMs, main) {
  const watchdog = setTimeout(() => {
    console.log(`  FAIL  the scenario finishes within ${timeLimitMs / 1000} s`);
    process.exit(1);
  }, timeLimitMs);
  const began = Date.now();
  try {
    await main();
  } catch (e) {
    check("the scenario runs to its end", false, String(e?.stack ?? e));
  }
  clearTimeout(watchdog);
  console.log(`${name}: ${((Date.now() - began) / 1000).toFixed(1)} s in the browser`);
  console.log(failures === 0 ? `${name}: all checks passed` : `${name}: ${failures} check(s) failed`);
  process.exit(failures === 0 ? 0 : 1);
}
