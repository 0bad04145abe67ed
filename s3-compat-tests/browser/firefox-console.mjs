// The console-firefox scenario's driver: Debian's Firefox ESR, headless,
// driven over WebDriver BiDi by puppeteer-core (it never downloads a
// browser), uses the web console ($CONSOLE_URL) for what console-browser
// checks in Chromium, in a shorter run: sign in, create a bucket, upload a
// multipart file, pause it with parts held back, reload, choose the file
// again (only the missing parts go), download it (SHA-256 of the bytes the
// page saved), sign out, sign in as bob and see nothing of alice's.
// Prints "ok"/"FAIL" lines; exits non-zero if any check failed.

import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import puppeteer from "puppeteer-core";
import { check, runScenario, sha256, sleep, until } from "./harness.mjs";

const FIREFOX = process.env.FIREFOX_BIN || "/usr/bin/firefox-esr";
const CONSOLE = process.env.CONSOLE_URL;
const WORK = process.env.WORK || "/tmp";
const TIME_LIMIT_MS = 180_000;
const MiB = 1024 * 1024;
const BUCKET = "alice-firefox";
const FILE = join(WORK, "firefox.bin");
const SIZE = statSync(FILE).size;
const PART = 8 * MiB;
const PARTS = Math.ceil(SIZE / PART);
const LET_THROUGH = 1; // UploadPart requests answered before the pause

const user = name => JSON.parse(readFileSync(join(WORK, `${name}.json`), "utf8"));
const sel = (testid, extra = "") => `[data-testid="${testid}"]${extra}`;


async function attr(page, selector, name) {
  return page.$eval(selector, (e, n) => e.getAttribute(n), name).catch(() => null);
}

async function text(page, selector) {
  return page.$eval(selector, e => e.textContent.trim()).catch(() => "");
}

/** Clicks `selector` once it is visible; again if a re-render (the refreshed
 * listing replaces its rows) detached the element between finding and clicking. */
async function clickWhenReady(page, selector) {
  for (let attempt = 1; ; attempt++) {
    try {
      await page.waitForSelector(selector, { visible: true, timeout: 10_000 });
      await page.click(selector);
      return;
    } catch (e) {
      if (attempt >= 5) throw e;
      await new Promise(resolve => setTimeout(resolve, 200));
    }
  }
}

async function signIn(page, who) {
  await page.waitForSelector(sel("sign-in-form"), { visible: true });
  await page.$eval(sel("access-key"), e => { e.value = ""; });
  await page.type(sel("access-key"), who.access_key_id);
  await page.$eval(sel("secret-key"), e => { e.value = ""; });
  await page.type(sel("secret-key"), who.secret_access_key);
  await page.click(sel("sign-in-submit"));
  await until(async () => (await text(page, sel("who-user"))) === who.name, 10_000);
}

async function main() {
  const alice = { ...user("alice"), name: "alice" }, bob = { ...user("bob"), name: "bob" };
  const browser = await puppeteer.launch({
    browser: "firefox", executablePath: FIREFOX, headless: true, timeout: 60_000,
    userDataDir: mkdtempSync(join(WORK, "firefox-console-")),
    defaultViewport: { width: 1100, height: 760 },
  });
  const problems = [];
  try {
    console.log(`-- ${await browser.version()}`);
    const page = await browser.newPage();
    page.on("dialog", dialog => dialog.accept());
    page.on("pageerror", e => problems.push(`page error: ${e.message}`));
    // The object URL the page saves a download through: its Blob is kept
    // so its bytes can be hashed in the page.
    await page.evaluateOnNewDocument(() => {
      const create = URL.createObjectURL.bind(URL);
      URL.createObjectURL = blob => { window.__savedBlob = blob; return create(blob); };
    });

    console.log("-- sign in, create a bucket");
    await page.goto(`${CONSOLE}/`);
    await signIn(page, alice);
    check("alice is signed in", (await text(page, sel("who-user"))) === "alice");
    await page.type(sel("new-bucket"), BUCKET);
    await page.click(sel("create-bucket"));
    await page.waitForSelector(sel("no-objects"), { visible: true, timeout: 10_000 });
    check("the new bucket opens, empty", page.url().includes(`#/b/${BUCKET}/`), page.url());

    console.log(`-- upload firefox.bin (${SIZE} bytes, ${PARTS} parts): ${LET_THROUGH} part goes through, then pause`);
    let phase = "first", seen = 0;
    const sent = { first: [], resume: [] }, letThrough = [];
    let intercepting = true;
    await page.setRequestInterception(true);
    page.on("request", request => {
      const u = new URL(request.url());
      const isPart = request.method() === "PUT" && u.searchParams.has("partNumber");
      if (isPart) sent[phase].push(Number(u.searchParams.get("partNumber")));
      if (!intercepting || request.isInterceptResolutionHandled()) return;
      if (isPart && phase === "first" && ++seen > LET_THROUGH) return; // held: in flight at the pause
      if (isPart && phase === "first") letThrough.push(Number(u.searchParams.get("partNumber")));
      request.continue();
    });
    const input = await page.$(sel("pick-files"));
    await input.uploadFile(FILE);
    const item = sel("upload-item", '[data-key="firefox.bin"]');
    await page.waitForSelector(item, { timeout: 10_000 });
    const loaded = async () => Number(await attr(page, item, "data-loaded"));
    const partSize = n => Math.min(PART, SIZE - (n - 1) * PART);
    const through = () => letThrough.reduce((sum, n) => sum + partSize(n), 0);
    await until(async () => letThrough.length === LET_THROUGH && (await loaded()) >= through(), 30_000, 50);
    await sleep(300); // the held parts are in flight
    await page.click(`${item} ${sel("transfer-pause")}`);
    await until(async () => (await attr(page, item, "data-state")) === "paused", 5_000);
    check("Pause stops the upload", (await attr(page, item, "data-state")) === "paused");
    const pausedAt = await loaded();
    check(`paused partway (${pausedAt} of ${SIZE} bytes)`, pausedAt > 0 && pausedAt < SIZE);
    intercepting = false;
    await page.setRequestInterception(false);

    console.log("-- reload, choose the file again: only the missing parts go");
    phase = "resume";
    await page.reload();
    await until(async () => (await text(page, sel("who-user"))) === "alice", 10_000);
    check("after the reload the session is restored", (await text(page, sel("who-user"))) === "alice");
    await page.waitForSelector(sel("pick-files"));
    await (await page.$(sel("pick-files"))).uploadFile(FILE);
    await until(async () => (await attr(page, item, "data-state")) === "done", 60_000);
    check("the resumed upload completes", (await attr(page, item, "data-state")) === "done");
    const held = Number(await attr(page, item, "data-held"));
    const first = letThrough;
    check(`the page found the ${LET_THROUGH} part(s) the server held`, held === LET_THROUGH, `data-held ${held}`);
    const expected = Array.from({ length: PARTS }, (_, i) => i + 1).filter(n => !first.includes(n)).join();
    const resent = [...sent.resume].sort((a, b) => a - b).join();
    check(`only the missing parts were sent (${expected})`, resent === expected, `sent after the reload: ${resent}`,
      `before: ${sent.first.join(",")}`);

    console.log("-- download");
    await page.click(sel("refresh"));
    const row = sel("object-row", '[data-key="firefox.bin"]');
    await page.waitForSelector(row, { timeout: 10_000 });
    await clickWhenReady(page, `${row} ${sel("download")}`);
    const dl = sel("download-item", '[data-key="firefox.bin"]');
    await until(async () => (await attr(page, dl, "data-state")) === "done", 60_000);
    check("the download completes", (await attr(page, dl, "data-state")) === "done");
    const saved = await page.evaluate(async () => {
      const bytes = new Uint8Array(await window.__savedBlob.arrayBuffer());
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
      return { size: bytes.length, sha256: Array.from(digest, b => b.toString(16).padStart(2, "0")).join("") };
    });
    check("the bytes the page saved have the file's size and SHA-256",
      saved.size === SIZE && saved.sha256 === sha256(readFileSync(FILE)), JSON.stringify(saved));

    console.log("-- sign out, sign in as bob");
    await page.click(sel("sign-out"));
    await page.waitForSelector(sel("sign-in-form"), { visible: true });
    await signIn(page, bob);
    await until(async () => (await page.$(sel("no-buckets"))) !== null && (await page.$$(sel("bucket-row"))).length === 0, 10_000);
    check("bob sees no bucket", (await page.$$(sel("bucket-row"))).length === 0);
    check("no uncaught error in the page", problems.length === 0, ...problems);
  } finally {
    await browser.close();
  }
}

await runScenario("console-firefox", TIME_LIMIT_MS, main);
