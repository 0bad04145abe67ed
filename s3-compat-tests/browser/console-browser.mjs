// The console-browser scenario's driver: Debian's Chromium, headless, driven
// by playwright-core, uses the web console ($CONSOLE_URL, `tessera serve
// --console`) like a person would: sign in, create a bucket, upload a 50 MiB
// file, pause it, reload, choose the file again, download, share, upload and
// delete a folder, page through a listing, sign out, sign in as someone else.
//
// What the page sends is watched with playwright's request events (which
// UploadPart requests, with which part numbers); what the server holds is read
// apart from the page, through the console's own API from node (sign-in,
// presign, then the S3 request). Screenshots go to $SCREENSHOTS ("off": none).
// Prints "ok"/"FAIL" lines; exits non-zero if any check failed.

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { CHROMIUM_ARGS as ARGS, check, runScenario, sha256, sleep, until } from "./harness.mjs";

const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const CONSOLE = process.env.CONSOLE_URL;
const WORK = process.env.WORK || "/tmp";
const SHOTS = process.env.SCREENSHOTS || "off";
const TIME_LIMIT_MS = 240_000;
const MiB = 1024 * 1024;
const BUCKET = "alice-photos";
const BIG = join(WORK, "big.bin");
const BIG_SIZE = statSync(BIG).size;
const PART = 8 * MiB;
const PARTS = Math.ceil(BIG_SIZE / PART);
const LET_THROUGH = 3; // UploadPart requests let through before the pause

const user = name => JSON.parse(readFileSync(join(WORK, `${name}.json`), "utf8"));

async function shot(page, name) {
  if (SHOTS === "off") return;
  mkdirSync(SHOTS, { recursive: true });
  await page.locator("body").screenshot({ path: join(SHOTS, `${name}.png`) }); // the page's content, no empty viewport below
}

/** The server's view, apart from the page: the console API from node. */
async function consoleClient(who) {
  const resp = await fetch(`${CONSOLE}/api/session`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ access_key: who.access_key_id, secret_key: who.secret_access_key }),
  });
  const session = await resp.json();
  if (!resp.ok) throw new Error(`node sign-in: ${resp.status} ${JSON.stringify(session)}`);
  const cookie = resp.headers.getSetCookie().map(c => c.split(";")[0]).join("; ");
  return async spec => {
    const pr = await fetch(`${CONSOLE}/api/presign`, {
      method: "POST", body: JSON.stringify({ requests: [spec] }),
      headers: { "content-type": "application/json", cookie, "x-tessera-csrf": session.csrf_token },
    });
    const { urls } = await pr.json();
    const r = await fetch(urls[0], { method: spec.method, headers: spec.headers || {} });
    return { status: r.status, text: await r.text(), headers: r.headers };
  };
}
const all = (xml, tag) => Array.from(xml.matchAll(new RegExp(`<${tag}>([^<]*)</${tag}>`, "g")), m => m[1]);

async function signIn(page, who) {
  await page.getByTestId("access-key").fill(who.access_key_id);
  await page.getByTestId("secret-key").fill(who.secret_access_key);
  await page.getByTestId("sign-in-submit").click();
}


async function main() {
  const alice = user("alice"), bob = user("bob");
  const asAlice = await consoleClient(alice);
  const profile = mkdtempSync(join(WORK, "chromium-console-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 60_000,
    viewport: { width: 1100, height: 760 }, acceptDownloads: true,
  });
  const problems = [];
  try {
    const page = await context.newPage();
    page.on("dialog", dialog => dialog.accept());
    page.on("pageerror", e => problems.push(`page error: ${e.message}`));
    page.on("console", m => {
      if (m.type() === "error" && /Content Security Policy|Uncaught/.test(m.text())) problems.push(m.text());
    });
    // Every UploadPart the page sends, by phase.
    let phase = "first";
    const partsSent = { first: [], resume: [] };
    let inFlight = 0, mostInFlight = 0;
    const isPart = r => r.method() === "PUT" && new URL(r.url()).searchParams.has("partNumber");
    page.on("request", r => {
      if (!isPart(r)) return;
      partsSent[phase].push(Number(new URL(r.url()).searchParams.get("partNumber")));
      mostInFlight = Math.max(mostInFlight, ++inFlight);
    });
    for (const event of ["requestfinished", "requestfailed"]) page.on(event, r => { if (isPart(r)) inFlight--; });

    console.log("-- sign in");
    await page.goto(`${CONSOLE}/?pageSize=5`);
    await page.getByTestId("sign-in-form").waitFor();
    check("the sign-in form is shown", await page.getByTestId("sign-in-form").isVisible());
    await shot(page, "sign-in");
    await signIn(page, { ...alice, secret_access_key: "not-the-secret" });
    const wrong = await until(async () => (await page.getByTestId("sign-in-error").textContent()).trim(), 10_000);
    check("a wrong secret shows an error", /wrong/i.test(wrong ?? ""), `shown: ${wrong}`);
    await signIn(page, alice);
    await page.getByTestId("who-user").filter({ hasText: "alice" }).waitFor({ timeout: 10_000 });
    check("alice is signed in", (await page.getByTestId("who-user").textContent()) === "alice");
    const storage = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie);
    check("the secret is in neither localStorage, sessionStorage nor a readable cookie",
      !storage.includes(alice.secret_access_key), storage.slice(0, 300));

    const units = await page.evaluate(async () => {
      const { sha256Bytes, toHex } = await import("/assets/sha256.js");
      const { partSizeFor } = await import("/assets/upload.js");
      const out = { same: true, parts: [] };
      for (const n of [0, 1, 55, 56, 64, 1000, 1 << 20]) {
        const bytes = crypto.getRandomValues(new Uint8Array(Math.min(n, 65536)));
        const data = n > 65536 ? new Uint8Array(n).map((_, i) => bytes[i % 65536]) : bytes;
        const subtle = toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", data)));
        if (toHex(sha256Bytes(data)) !== subtle) out.same = false;
      }
      const MiB = 1024 * 1024;
      out.parts = [50 * MiB, 8 * MiB * 10000, 8 * MiB * 10000 + 1, 200 * 1024 * MiB].map(partSizeFor).map(p => p / MiB);
      return out;
    });
    check("the page's pure-JS SHA-256 (for non-secure contexts) agrees with crypto.subtle", units.same);
    check("part size: 8 MiB, doubled while a file would need more than 10,000 parts",
      units.parts.join() === "8,8,16,32", units.parts.join());

    console.log("-- create a bucket");
    await page.getByTestId("new-bucket").fill(BUCKET);
    await page.getByTestId("create-bucket").click();
    await page.getByTestId("pick-files").waitFor({ state: "attached" });
    await page.getByTestId("no-objects").waitFor({ timeout: 10_000 });
    check("the new bucket opens, empty", page.url().includes(`#/b/${BUCKET}/`), page.url());

    console.log(`-- upload big.bin (${BIG_SIZE} bytes, ${PARTS} parts): ${LET_THROUGH} parts go through, then pause`);
    let seen = 0;
    const held = [], letThrough = [];
    await page.route(url => url.searchParams.has("partNumber"), async route => {
      if (route.request().method() !== "PUT") return route.continue();
      seen++;
      if (seen > LET_THROUGH) { held.push(route); return; } // never answered: in flight at the pause
      letThrough.push(Number(new URL(route.request().url()).searchParams.get("partNumber")));
      await sleep((seen - 1) * 400); // staggered, so the bar is seen moving
      await route.continue().catch(() => {});
    });
    // Every value the upload's bar takes, recorded in the page as it changes.
    await page.evaluate(() => {
      window.barValues = [];
      new MutationObserver(changes => {
        for (const c of changes) {
          const value = Number(c.target.getAttribute("data-loaded"));
          if (c.target.dataset.key === "big.bin" && window.barValues.at(-1) !== value) window.barValues.push(value);
        }
      }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ["data-loaded"] });
    });
    await page.getByTestId("pick-files").setInputFiles(BIG);
    const item = page.locator('[data-testid="upload-item"][data-key="big.bin"]');
    await item.waitFor({ timeout: 10_000 });
    await until(async () => Number(await item.getAttribute("data-loaded")) >= LET_THROUGH * PART &&
      held.length === Math.min(4, PARTS - LET_THROUGH), 60_000, 50);
    const samples = await page.evaluate(() => window.barValues);
    const moving = samples.filter(n => n > 0 && n < BIG_SIZE);
    console.log(`    progress samples (MiB): ${samples.map(n => (n / MiB).toFixed(1)).join(" ")}`);
    check("the progress bar moved (several values between 0 and the size)",
      moving.length >= 3 && samples.every((n, i) => i === 0 || n >= samples[i - 1]), `samples: ${samples.join(", ")}`);
    const text = await item.getByTestId("transfer-text").textContent();
    check("the upload shows bytes, rate and time left", /MiB of 50\.0 MiB · .*\/s · .* left/.test(text), text);
    await item.getByTestId("transfer-pause").click();
    await page.locator('[data-testid="upload-item"][data-state="paused"]').waitFor({ timeout: 5_000 });
    check("Pause stops the upload", (await item.getAttribute("data-state")) === "paused");
    const pausedAt = Number(await item.getAttribute("data-loaded"));
    check(`paused partway (${pausedAt} of ${BIG_SIZE} bytes)`, pausedAt > 0 && pausedAt < BIG_SIZE);
    await shot(page, "upload-paused");
    await page.getByTestId("nav-overview").click();
    await page.locator('[data-testid="overview-bar"][data-bucket="unfinished uploads"]').waitFor({ timeout: 10_000 });
    const ovUploads = await page.getByTestId("ov-uploads").textContent();
    check("the overview shows the unfinished upload and its bytes", ovUploads.startsWith("1 · ") && /MiB/.test(ovUploads), ovUploads);
    await shot(page, "overview");
    await page.getByTestId("nav-browse").click();
    for (const route of held) await route.abort().catch(() => {});
    await page.unrouteAll({ behavior: "ignoreErrors" });

    const uploads = await asAlice({ method: "GET", bucket: BUCKET, query: { uploads: "", prefix: "big.bin" } });
    const ids = all(uploads.text, "UploadId");
    check("the server has one unfinished upload of big.bin", ids.length === 1, uploads.text.slice(0, 500));
    const listed = await asAlice({ method: "GET", bucket: BUCKET, key: "big.bin", query: { uploadId: ids[0] ?? "" } });
    const heldParts = all(listed.text, "PartNumber").map(Number);
    const through = [...letThrough].sort((a, b) => a - b).join();
    check(`ListParts holds the ${LET_THROUGH} parts let through (${through})`, heldParts.join() === through, listed.text.slice(0, 500));
    check("and each part has its SHA-256", all(listed.text, "ChecksumSHA256").length === heldParts.length);

    console.log("-- reload the page, choose the file again: only the missing parts go");
    await page.reload();
    await page.getByTestId("who-user").filter({ hasText: "alice" }).waitFor({ timeout: 10_000 });
    check("after the reload the session is restored (GET /api/session)", true);
    await page.getByTestId("pick-files").waitFor({ state: "attached" });
    check("and the same bucket is shown", page.url().includes(`#/b/${BUCKET}/`), page.url());
    phase = "resume";
    const start = Date.now();
    await page.getByTestId("pick-files").setInputFiles(BIG);
    const item2 = page.locator('[data-testid="upload-item"][data-key="big.bin"]');
    await page.locator('[data-testid="upload-item"][data-key="big.bin"][data-state="done"]').waitFor({ timeout: 90_000 });
    console.log(`    resumed upload done in ${((Date.now() - start) / 1000).toFixed(1)} s`);
    check("the resumed upload completes", (await item2.getAttribute("data-state")) === "done");
    check(`the page found the ${heldParts.length} parts the server held`, (await item2.getAttribute("data-held")) === String(heldParts.length));
    const expected = Array.from({ length: PARTS }, (_, i) => i + 1).filter(n => !heldParts.includes(n));
    const resent = [...partsSent.resume].sort((a, b) => a - b);
    check(`only the missing parts were sent: ${expected.join(",")}`, resent.join() === expected.join(),
      `sent after the reload: ${resent.join(",")}`, `before: ${partsSent.first.join(",")}`);
    check(`at most 4 parts were in flight at once (${mostInFlight})`, mostInFlight <= 4 && mostInFlight >= 2);
    const head = await asAlice({ method: "HEAD", bucket: BUCKET, key: "big.bin" });
    check("the object has the file's size", head.headers.get("content-length") === String(BIG_SIZE),
      `HEAD ${head.status} ${head.headers.get("content-length")}`);
    check(`its ETag says ${PARTS} parts`, (head.headers.get("etag") ?? "").endsWith(`-${PARTS}"`), head.headers.get("etag"));
    const after = await asAlice({ method: "GET", bucket: BUCKET, query: { uploads: "", prefix: "big.bin" } });
    check("no unfinished upload is left", all(after.text, "UploadId").length === 0, after.text.slice(0, 300));

    console.log("-- download");
    await page.getByTestId("refresh").click();
    const row = page.locator('[data-testid="object-row"][data-key="big.bin"]');
    await row.waitFor({ timeout: 10_000 });
    check("the listing shows big.bin with its size", (await row.getByTestId("object-size").getAttribute("data-bytes")) === String(BIG_SIZE));
    // The download is slowed to 16 MiB/s and paused at 8 MiB: Resume must
    // continue with Range and If-Range, not start over. (A broken stream takes
    // the same path, retried by itself; DevTools' offline mode does not break
    // a response already streaming, so the test pauses instead.)
    const gets = [];
    const onGet = r => {
      const u = new URL(r.url());
      if (r.method() === "GET" && u.pathname === `/${BUCKET}/big.bin` && !u.searchParams.has("attributes")) gets.push(r.headers());
    };
    page.on("request", onGet);
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    const network = (offline, bytesPerSecond) => cdp.send("Network.emulateNetworkConditions",
      { offline, latency: 0, downloadThroughput: bytesPerSecond, uploadThroughput: -1 });
    await network(false, 16 * MiB);
    const downloadEvent = page.waitForEvent("download", { timeout: 90_000 });
    await row.getByTestId("download").click();
    const dlRow = page.locator('[data-testid="download-item"][data-key="big.bin"]');
    await until(async () => Number(await dlRow.getAttribute("data-loaded")) >= 8 * MiB, 30_000, 20);
    await dlRow.getByTestId("transfer-pause").click();
    await page.locator('[data-testid="download-item"][data-key="big.bin"][data-state="paused"]').waitFor({ timeout: 5_000 });
    const cutAt = Number(await dlRow.getAttribute("data-loaded"));
    await network(false, -1);
    await dlRow.getByTestId("transfer-resume").click();
    const download = await downloadEvent;
    page.off("request", onGet);
    const resumed = gets.slice(1).find(h => /^bytes=\d+-$/.test(h.range ?? ""));
    check(`paused at ${(cutAt / MiB).toFixed(1)} MiB, the download resumed with Range and If-Range`,
      cutAt < BIG_SIZE && !!resumed && /^"?[0-9a-f]{32}-\d+"?$/.test(resumed["if-range"] ?? "") && Number(resumed.range.slice(6, -1)) > 0,
      `requests: ${JSON.stringify(gets.map(h => ({ range: h.range, ifRange: h["if-range"] })))}`);
    const saved = join(WORK, "downloaded.bin");
    await download.saveAs(saved);
    check("the download has the file's SHA-256", sha256(readFileSync(saved)) === sha256(readFileSync(BIG)));
    const dlItem = page.locator('[data-testid="download-item"][data-key="big.bin"]');
    check("its progress bar is full", (await dlItem.getAttribute("data-loaded")) === String(BIG_SIZE),
      await dlItem.getAttribute("data-loaded"));

    console.log("-- object details and a share link");
    await page.getByTestId("clear-finished").click();
    await row.getByTestId("object-link").click();
    await page.getByTestId("detail-checksum").waitFor({ timeout: 10_000 });
    const checksum = await page.getByTestId("detail-checksum").textContent();
    check("details show the SHA-256 checksum (COMPOSITE)", /SHA256 \S+/.test(checksum), checksum);
    const etag = await page.getByTestId("detail-etag").textContent();
    check("details show the multipart ETag", new RegExp(`^"?[0-9a-f]{32}-${PARTS}"?$`).test(etag), etag);
    check("details list the versions (ListObjectVersions)", await page.getByTestId("version-row").count() >= 1);
    await page.getByTestId("share-expiry").selectOption("86400");
    await page.getByTestId("make-share").click();
    await page.getByTestId("share-url").waitFor();
    const link = await page.getByTestId("share-url").inputValue();
    check("the share link is a presigned GET valid for one day", /X-Amz-Expires=86400/.test(link) && /X-Amz-Signature=/.test(link), link);
    await page.getByTestId("details").scrollIntoViewIfNeeded();
    await shot(page, "object-details");
    const fetched = join(WORK, "shared.bin");
    execFileSync("curl", ["-sS", "--fail", "-o", fetched, link]);
    check("curl fetches the share link: the same bytes", sha256(readFileSync(fetched)) === sha256(readFileSync(BIG)));
    await page.getByTestId("close-details").click();

    console.log("-- drop a file on the listing");
    await page.getByTestId("drop-zone").evaluate(zone => {
      const data = new DataTransfer();
      data.items.add(new File(["dropped by the console test\n"], "dropped.txt", { type: "text/plain" }));
      zone.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
    });
    await page.locator('[data-testid="upload-item"][data-key="dropped.txt"][data-state="done"]').waitFor({ timeout: 20_000 });
    const dropped = await asAlice({ method: "GET", bucket: BUCKET, key: "dropped.txt" });
    check("a file dropped on the listing is uploaded to the folder shown, with its type",
      dropped.text === "dropped by the console test\n" && dropped.headers.get("content-type") === "text/plain",
      `${dropped.status} ${dropped.headers.get("content-type")} ${dropped.text.slice(0, 100)}`);
    await asAlice({ method: "DELETE", bucket: BUCKET, key: "dropped.txt" });

    console.log("-- upload a folder, page through it");
    await page.getByTestId("pick-folder").setInputFiles(join(WORK, "album"));
    const albumFiles = readdirSync(join(WORK, "album"), { recursive: true }).filter(f => /\.jpg$/.test(f));
    const albumDone = page.locator('[data-testid="upload-item"][data-state="done"][data-key^="album/"]');
    await until(async () => (await albumDone.count()) === albumFiles.length, 60_000);
    check(`the ${albumFiles.length} files of the folder are uploaded`, (await albumDone.count()) === albumFiles.length);
    const keys = await asAlice({ method: "GET", bucket: BUCKET, query: { "list-type": "2", prefix: "album/" } });
    check("their keys are the folder's relative paths", all(keys.text, "Key").sort().join() ===
      albumFiles.map(f => `album/${f}`).sort().join(), all(keys.text, "Key").join(", "));
    await page.getByTestId("refresh").click();
    await page.locator('[data-testid="folder-row"][data-key="album/"]').waitFor({ timeout: 10_000 });
    check("the bucket lists the folder album/ and big.bin", await page.getByTestId("object-row").count() === 1);
    await page.getByTestId("clear-finished").click();
    await shot(page, "browser");
    await page.locator('[data-testid="folder-row"][data-key="album/"]').getByTestId("folder-link").click();
    await page.locator('[data-testid="folder-row"][data-key="album/summer/"]').getByTestId("folder-link").click();
    await page.getByTestId("object-row").first().waitFor();
    const page1 = await page.getByTestId("object-row").count();
    check("?pageSize=5: the first page of album/summer/ has 5 objects, and Next is on", page1 === 5 && await page.getByTestId("next-page").isEnabled());
    await page.getByTestId("next-page").click();
    await until(async () => (await page.getByTestId("page-label").textContent()) === "Page 2");
    await until(async () => (await page.getByTestId("object-row").count()) === 1);
    check("Next: the second page has the 6th object", await page.getByTestId("object-row").count() === 1 && !(await page.getByTestId("next-page").isEnabled()));
    await page.getByTestId("prev-page").click();
    await until(async () => (await page.getByTestId("object-row").count()) === 5);
    check("Previous: back to the first page", (await page.getByTestId("page-label").textContent()) === "Page 1");

    console.log("-- storage overview");
    await page.getByTestId("nav-overview").click();
    const bar = page.locator(`[data-testid="overview-bar"][data-bucket="${BUCKET}"]`);
    await bar.waitFor({ timeout: 10_000 });
    const albumBytes = albumFiles.reduce((n, f) => n + statSync(join(WORK, "album", f)).size, 0);
    check("the overview's chart has the bucket's bytes", Number(await bar.getAttribute("data-bytes")) === BIG_SIZE + albumBytes,
      `${await bar.getAttribute("data-bytes")} != ${BIG_SIZE + albumBytes}`);

    console.log("-- delete the folder");
    await page.goto(`${CONSOLE}/?pageSize=5#/b/${BUCKET}/album%2F`);
    await page.getByTestId("delete-folder").click();
    await until(async () => /Deleted the folder album\//.test(await page.getByTestId("message").textContent()), 20_000);
    const left = await asAlice({ method: "GET", bucket: BUCKET, query: { "list-type": "2", prefix: "album/" } });
    check("deleting album/ removed every key under it", all(left.text, "Key").length === 0, left.text.slice(0, 300));
    check("and the page went up to the bucket", page.url().endsWith(`#/b/${BUCKET}/`), page.url());

    console.log("-- delete the object, then the bucket");
    await page.locator('[data-testid="object-row"][data-key="big.bin"]').getByTestId("delete-object").click();
    await until(async () => (await page.getByTestId("object-row").count()) === 0, 10_000);
    const gone = await asAlice({ method: "HEAD", bucket: BUCKET, key: "big.bin" });
    check("Delete removes the object (HEAD: 404)", gone.status === 404 && await page.getByTestId("no-objects").isVisible(), `HEAD ${gone.status}`);
    await page.getByTestId("crumbs").getByRole("link", { name: "Buckets" }).click();
    const bucketRow = page.locator(`[data-testid="bucket-row"][data-bucket="${BUCKET}"]`);
    await bucketRow.waitFor({ timeout: 10_000 });
    const created = await bucketRow.getByTestId("bucket-created").textContent();
    check("the bucket list (ListBuckets) shows the bucket with its creation date", /\d{4}/.test(created), created);
    await bucketRow.getByTestId("delete-bucket").click();
    await until(async () => (await bucketRow.count()) === 0, 10_000);
    const noBucket = await asAlice({ method: "GET", bucket: BUCKET, query: { "list-type": "2" } });
    check("Delete removes the empty bucket (NoSuchBucket)", noBucket.status === 404 && /NoSuchBucket/.test(noBucket.text),
      `${noBucket.status} ${noBucket.text.slice(0, 200)}`);
    await asAlice({ method: "PUT", bucket: BUCKET }); // again, for bob not to see

    console.log("-- sign out, sign in as bob");
    // An upload left paused (slowed to 4 MiB/s so it is caught in flight):
    // a transfer row and a local record that must not outlive the session.
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 4 * MiB });
    await page.goto(`${CONSOLE}/#/b/${BUCKET}/`);
    await page.getByTestId("no-objects").waitFor({ timeout: 10_000 });
    await page.getByTestId("pick-files").setInputFiles(BIG);
    const leftOver = page.locator('[data-testid="upload-item"][data-key="big.bin"]');
    await until(async () => Number(await leftOver.getAttribute("data-loaded")) > 0, 20_000, 20);
    await leftOver.getByTestId("transfer-pause").click();
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    const before = `${await page.getByTestId("upload-item").count()} row(s), ${await page.evaluate(() => localStorage.length)} record(s)`;
    await page.getByTestId("sign-out").click();
    await page.getByTestId("sign-in-form").waitFor();
    check("signing out forgets alice's transfers and the record of her uploads",
      before === "1 row(s), 1 record(s)" && await page.locator('[data-testid="upload-item"], [data-testid="download-item"]').count() === 0 &&
      await page.evaluate(() => localStorage.length) === 0, `before signing out: ${before}`);
    await page.reload();
    await page.getByTestId("sign-in-form").waitFor();
    check("signed out: a reload shows the sign-in form", await page.getByTestId("sign-in-form").isVisible());
    await signIn(page, bob);
    await page.getByTestId("who-user").filter({ hasText: "bob" }).waitFor({ timeout: 10_000 });
    await until(async () => await page.getByTestId("no-buckets").isVisible(), 10_000);
    check("bob sees no bucket", await page.getByTestId("bucket-row").count() === 0 && await page.getByTestId("no-buckets").isVisible());
    await page.goto(`${CONSOLE}/#/b/${BUCKET}/`);
    await until(async () => /AccessDenied/.test(await page.getByTestId("message").textContent()), 10_000);
    check("bob cannot list alice's bucket", /AccessDenied/.test(await page.getByTestId("message").textContent()) &&
      await page.getByTestId("object-row").count() === 0, await page.getByTestId("message").textContent());
    check("no CSP violation or uncaught error in the page", problems.length === 0, ...problems);
  } finally {
    await context.close();
  }
}

await runScenario("console-browser", TIME_LIMIT_MS, main);
