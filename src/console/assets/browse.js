// Buckets, folders and objects: the location lives in the URL's hash
// (#/b/<bucket>/<prefix>), so a reload comes back to the same folder.
// Listings are ListObjectsV2 pages of 1000 keys with delimiter "/" and
// continuation tokens (Next / Previous keep the tokens of the pages seen),
// so a folder of 100,000 keys costs one page at a time.

import { $, el, formatBytes, formatDate, say, errorText } from "./dom.js";
import * as s3 from "./s3.js";
import { startUpload } from "./upload.js";
import { Download } from "./download.js";
import { track } from "./transfers.js";

// ?pageSize=N (1..1000) shortens pages, for trying the paging on a small folder.
const PAGE_SIZE = Math.min(1000, Math.max(1, Number(new URLSearchParams(location.search).get("pageSize")) || 1000));

let where = { bucket: null, prefix: "" };
let tokens = [null]; // tokens[i]: the continuation token of page i
let page = 0;
let detailsKey = null;

export function currentLocation() {
  const m = /^#\/b\/([^/]*)\/?(.*)$/.exec(location.hash);
  return m ? { bucket: decodeURIComponent(m[1]), prefix: decodeURIComponent(m[2]) } : { bucket: null, prefix: "" };
}

export function go(bucket, prefix = "") {
  const hash = bucket ? `#/b/${encodeURIComponent(bucket)}/${encodeURIComponent(prefix)}` : "#/";
  if (location.hash === hash) show(); else location.hash = hash;
}

/** Shows what the hash names (called on load and on every hashchange). */
export async function show() {
  where = currentLocation();
  tokens = [null];
  page = 0;
  closeDetails();
  renderCrumbs();
  $("buckets-view").hidden = !!where.bucket;
  $("objects-view").hidden = !where.bucket;
  $("delete-folder").hidden = !where.prefix;
  if (where.bucket) await loadPage(); else await loadBuckets();
}

function renderCrumbs() {
  const nav = $("crumbs");
  nav.replaceChildren();
  const link = (label, bucket, prefix, current) => el("a", {
    href: bucket ? `#/b/${encodeURIComponent(bucket)}/${encodeURIComponent(prefix)}` : "#/",
    "aria-current": current ? "location" : null }, label);
  nav.append(link("Buckets", null, "", !where.bucket));
  if (!where.bucket) return;
  nav.append(" / ", link(where.bucket, where.bucket, "", !where.prefix));
  let acc = "";
  const parts = where.prefix.split("/").filter((_, i, all) => i < all.length - 1);
  parts.forEach((part, i) => {
    acc += `${part}/`;
    nav.append(" / ", link(part || "(empty)", where.bucket, acc, i === parts.length - 1));
  });
}

async function loadBuckets() {
  const body = $("bucket-rows");
  try {
    const buckets = await s3.listBuckets();
    body.replaceChildren(...buckets.map(b => el("tr", { "data-testid": "bucket-row", "data-bucket": b.name },
      el("td", {}, el("a", { href: `#/b/${encodeURIComponent(b.name)}/`, "data-testid": "bucket-link" }, b.name)),
      el("td", { "data-testid": "bucket-created" }, formatDate(b.created)),
      el("td", { className: "actions" }, el("button", { type: "button", className: "danger", "data-testid": "delete-bucket",
        "aria-label": `Delete bucket ${b.name}`, onclick: () => deleteBucket(b.name) }, "Delete")))));
    $("no-buckets").hidden = buckets.length > 0;
  } catch (e) {
    say(`Could not list the buckets: ${errorText(e)}`, true);
  }
}

async function deleteBucket(name) {
  if (!confirm(`Delete the bucket ${name}? It must be empty.`)) return;
  try {
    await s3.deleteBucket(name);
    say(`Deleted the bucket ${name}.`);
  } catch (e) {
    say(e.code === "BucketNotEmpty" ? `The bucket ${name} is not empty: delete its objects first.` : errorText(e), true);
  }
  await loadBuckets();
}

export async function createBucket(name) {
  try {
    await s3.createBucket(name);
    say(`Created the bucket ${name}.`);
    go(name, "");
  } catch (e) {
    say(`Could not create the bucket ${name}: ${errorText(e)}`, true);
  }
}

async function loadPage() {
  const { bucket, prefix } = where;
  const body = $("object-rows");
  try {
    const result = await s3.listObjects(bucket, { prefix, token: tokens[page], maxKeys: PAGE_SIZE });
    if (bucket !== where.bucket || prefix !== where.prefix) return; // moved on meanwhile
    tokens[page + 1] = result.next;
    const name = key => key.slice(prefix.length);
    const folderRows = result.folders.map(p => el("tr", { "data-testid": "folder-row", "data-key": p },
      el("td", {}, el("a", { href: `#/b/${encodeURIComponent(bucket)}/${encodeURIComponent(p)}`, "data-testid": "folder-link" },
        el("span", { className: "folder-icon", "aria-hidden": "true" }), name(p))),
      el("td", { className: "num" }, "—"), el("td", {}, ""),
      el("td", { className: "actions" }, el("button", { type: "button", className: "danger", "data-testid": "delete-folder-row",
        "aria-label": `Delete folder ${name(p)}`, onclick: () => deleteFolder(p) }, "Delete"))));
    const objectRows = result.objects.filter(o => o.key !== prefix).map(o => el("tr", { "data-testid": "object-row", "data-key": o.key },
      el("td", {}, el("button", { type: "button", className: "link", "data-testid": "object-link",
        onclick: () => openDetails(o.key) }, name(o.key))),
      el("td", { className: "num", "data-testid": "object-size", "data-bytes": o.size }, formatBytes(o.size)),
      el("td", {}, formatDate(o.lastModified)),
      el("td", { className: "actions" },
        el("button", { type: "button", "data-testid": "download", "aria-label": `Download ${name(o.key)}`,
          onclick: () => download(o.key) }, "Download"),
        el("button", { type: "button", className: "danger", "data-testid": "delete-object",
          "aria-label": `Delete ${name(o.key)}`, onclick: () => deleteObject(o.key) }, "Delete"))));
    body.replaceChildren(...folderRows, ...objectRows);
    $("no-objects").hidden = folderRows.length + objectRows.length > 0 || page > 0;
    $("prev-page").disabled = page === 0;
    $("next-page").disabled = !result.next;
    $("page-label").textContent = page > 0 || result.next ? `Page ${page + 1}` : "";
  } catch (e) {
    body.replaceChildren();
    say(`Could not list ${bucket}/${prefix}: ${errorText(e)}`, true);
  }
}

export function nextPage() { if (tokens[page + 1]) { page++; loadPage(); } }
export function prevPage() { if (page > 0) { page--; loadPage(); } }
export function refresh() { if (where.bucket) loadPage(); else loadBuckets(); }

async function deleteObject(key) {
  if (!confirm(`Delete ${key}?`)) return;
  try {
    await s3.deleteObject(where.bucket, key);
    say(`Deleted ${key}.`);
  } catch (e) {
    say(`Could not delete ${key}: ${errorText(e)}`, true);
  }
  loadPage();
}

/** Deletes every key under prefix, with DeleteObjects in batches of 1000. */
export async function deleteFolder(prefix = where.prefix) {
  const bucket = where.bucket;
  if (!prefix || !confirm(`Delete the folder ${prefix} and everything in it?`)) return;
  let deleted = 0;
  const failed = [];
  try {
    await s3.forEachKeyPage(bucket, prefix, async keys => {
      if (!keys.length) return;
      failed.push(...await s3.deleteObjects(bucket, keys));
      deleted += keys.length;
      say(`Deleting ${prefix}: ${deleted} keys so far…`);
    });
  } catch (e) {
    failed.push({ key: prefix, message: errorText(e) });
  }
  if (failed.length) say(`Deleted ${deleted - failed.length} keys; ${failed.length} failed (${failed[0].key}: ${failed[0].message || failed[0].code}).`, true);
  else say(`Deleted the folder ${prefix} (${deleted} keys).`);
  if (prefix === where.prefix) go(bucket, parentOf(prefix)); else loadPage();
}

function parentOf(prefix) {
  const trimmed = prefix.slice(0, -1);
  const cut = trimmed.lastIndexOf("/");
  return cut < 0 ? "" : trimmed.slice(0, cut + 1);
}

/** Files picked or dropped: key = current prefix + the file's relative path. */
export function uploadFiles(entries) {
  if (!where.bucket) { say("Open a bucket first.", true); return; }
  const { bucket, prefix } = where;
  const started = entries.map(({ file, path }) => {
    const upload = startUpload(file, bucket, prefix + path);
    if (!upload.tracked) { upload.tracked = true; track(upload, "upload"); }
    upload.addEventListener("change", () => { if (upload.state === "done" && bucket === where.bucket) refreshSoon(); });
    return upload;
  });
  say(`Uploading ${started.length} file${started.length === 1 ? "" : "s"} to ${bucket}/${prefix}`);
}

let refreshTimer = null;
function refreshSoon() { clearTimeout(refreshTimer); refreshTimer = setTimeout(refresh, 300); }

function download(key) {
  const d = new Download(where.bucket, key);
  track(d, "download");
  d.start();
}

// Object details: HeadObject, GetObjectAttributes and ListObjectVersions.
async function openDetails(key) {
  detailsKey = key;
  const bucket = where.bucket;
  const list = $("details-list");
  list.replaceChildren(el("dt", {}, "Key"), el("dd", {}, key));
  $("version-rows").replaceChildren();
  $("share-url").hidden = $("copy-share").hidden = true;
  $("details").hidden = false;
  $("details-title").focus();
  const add = (label, value, testid) => list.append(el("dt", {}, label), el("dd", { "data-testid": testid }, value ?? "—"));
  try {
    const [headers, attrs, versions] = await Promise.all([
      s3.headObject(bucket, key), s3.objectAttributes(bucket, key),
      s3.listVersions(bucket, key).catch(() => []),
    ]);
    if (detailsKey !== key) return;
    add("Size", `${formatBytes(Number(attrs.size))} (${attrs.size} bytes)`, "detail-size");
    add("Last modified", formatDate(headers.get("Last-Modified")), "detail-modified");
    add("Content type", headers.get("Content-Type"), "detail-content-type");
    add("ETag", attrs.etag, "detail-etag");
    add("Checksum", attrs.checksum ? `${attrs.checksum.algorithm} ${attrs.checksum.value}${
      attrs.checksum.type ? ` (${attrs.checksum.type})` : ""}` : "none stored", "detail-checksum");
    if (attrs.parts) add("Parts", attrs.parts, "detail-parts");
    const version = headers.get("x-amz-version-id");
    if (version) add("Version", version, "detail-version");
    const meta = [];
    headers.forEach((value, name) => { if (name.startsWith("x-amz-meta-")) meta.push(`${name.slice(11)}: ${value}`); });
    add("User metadata", meta.length ? meta.join("\n") : "none", "detail-metadata");
    $("version-rows").replaceChildren(...versions.map(v => el("tr", { "data-testid": "version-row" },
      el("td", {}, v.versionId || "null", v.latest ? " (latest)" : "", v.deleteMarker ? " · delete marker" : ""),
      el("td", { className: "num" }, v.size === null ? "—" : formatBytes(v.size)),
      el("td", {}, formatDate(v.lastModified)), el("td", { className: "mono" }, v.etag || ""))));
  } catch (e) {
    add("Error", errorText(e), "detail-error");
  }
}

export function closeDetails() { detailsKey = null; $("details").hidden = true; }

export async function makeShareLink() {
  if (!detailsKey) return;
  try {
    const url = await s3.shareLink(where.bucket, detailsKey, Number($("share-expiry").value));
    const field = $("share-url");
    field.value = url;
    field.hidden = $("copy-share").hidden = false;
    field.select();
  } catch (e) {
    say(`Could not make a share link: ${errorText(e)}`, true);
  }
}

export async function copyShareLink() {
  const field = $("share-url");
  try {
    await navigator.clipboard.writeText(field.value);
  } catch {
    field.select();
    document.execCommand("copy");
  }
  say("The share link is copied.");
}
