// The cors-browser scenario's driver: Debian's Chromium, headless, driven by
// playwright-core, opens a page served by py/cors_browser_backend.py on
// another origin than tessera ($ENDPOINT), and runs page.html's scenario
// (presigned PUT, multipart upload, read back, SHA-256 in the page) in
// three phases, each in a fresh browser profile:
//
//   none       the bucket has no CORS rules: the browser refuses the very first PUT
//   no-expose  rules without ExposeHeaders: the PUT works, the multipart
//              upload cannot, since the page cannot read the parts' ETags
//   full       rules exposing ETag: everything works, and what boto3 reads
//              from the server has the SHA-256 the page computed
//
// Prints "ok"/"FAIL" lines; exits non-zero if any check failed.

import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";
import { CHROMIUM_ARGS as ARGS, check, runScenario } from "./harness.mjs";

const here = new URL(".", import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const WORK = process.env.WORK || "/tmp";
const TIME_LIMIT_MS = 300_000;


/** Starts the page's backend; resolves to its origin and the process. */
function startBackend() {
  const child = spawn("python3", [join(here, "..", "py", "cors_browser_backend.py")], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.once("line", line => {
      const origin = line.split("backend listening on ")[1];
      origin ? resolve({ origin, child }) : reject(new Error(`backend said: ${line}`));
    });
    child.once("exit", code => reject(new Error(`backend exited with ${code}`)));
  });
}

async function backend(origin, path, method = "GET") {
  const resp = await fetch(origin + path, { method });
  const body = await resp.json();
  if (!resp.ok) throw new Error(`backend ${method} ${path}: ${JSON.stringify(body)}`);
  return body;
}

/** One phase: the bucket's rules set, the page run in a fresh profile. */
async function runPhase(origin, mode) {
  await backend(origin, `/setup?cors=${mode}`, "POST");
  const profile = mkdtempSync(join(WORK, `chromium-${mode}-`));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 60_000,
  });
  try {
    const page = await context.newPage();
    page.on("console", message => console.log(`    [${mode}] ${message.text()}`));
    await page.goto(origin + "/", { timeout: 30_000 });
    check(`[${mode}] the page has a secure context (crypto.subtle)`, await page.evaluate(() => !!crypto.subtle));
    return await page.evaluate(prefix => window.runScenario({ prefix }), `${mode}/`);
  } finally {
    await context.close();
  }
}

async function main() {
  const { origin, child } = await startBackend();
  console.log(`page origin ${origin}, tessera ${process.env.ENDPOINT}`);
  check("the page and tessera are different origins", new URL(origin).origin !== new URL(process.env.ENDPOINT).origin);
  try {
    const none = await runPhase(origin, "none");
    check("[none] without CORS rules the upload fails in the browser", none.ok === false, JSON.stringify(none));
    check("[none] it fails at the first cross-origin request", none.failedStep === "presigned PUT", JSON.stringify(none));
    check("[none] and nothing was written", !(await backend(origin, "/object?key=none/single.bin")).exists);

    const partial = await runPhase(origin, "no-expose");
    check("[no-expose] the presigned PUT works", partial.failedStep !== "presigned PUT", JSON.stringify(partial));
    check("[no-expose] its ETag is hidden from the page", partial.singleEtag === null, JSON.stringify(partial));
    check("[no-expose] the multipart upload fails: part ETags cannot be read",
      partial.failedStep === "multipart upload" && /ETag/.test(partial.error ?? ""), JSON.stringify(partial));

    const full = await runPhase(origin, "full");
    check("[full] presigned PUT, multipart upload, form POST and the reads succeed", full.ok === true,
      JSON.stringify(full));
    check("[full] the page read the form upload's ETag from its PostResponse", /^"[0-9a-f]{32}"$/.test(full.formEtag ?? ""),
      full.formEtag);
    check("[full] the page read the PUT's ETag", /^"[0-9a-f]{32}"$/.test(full.singleEtag ?? ""), full.singleEtag);
    check("[full] the multipart ETag has two parts", /^"?[0-9a-f]{32}-2"?$/.test(full.multiEtag ?? ""), full.multiEtag);
    const stored = [["full/single.bin", full.singleSha256], ["full/multi.bin", full.multiSha256],
      ["full/form.bin", full.formSha256]];
    for (const [key, sha] of stored) {
      const stored = await backend(origin, `/object?key=${encodeURIComponent(key)}`);
      check(`[full] boto3 reads ${key} with the SHA-256 the page computed`, stored.sha256 === sha,
        `page ${sha}`, `boto3 ${JSON.stringify(stored)}`);
    }
  } finally {
    await backend(origin, "/quit", "POST").catch(() => child.kill());
  }
}

await runScenario("cors-browser", TIME_LIMIT_MS, main);
