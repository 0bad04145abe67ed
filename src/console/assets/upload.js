// Uploads, straight from the page to the S3 endpoint with presigned URLs.
//
// Files under 16 MiB go up in one PUT; larger ones as a multipart upload with
// SHA-256 checksums: a fixed part size (8 MiB, doubled while the file would
// need more than 10,000 parts), at most 4 requests in flight across all
// uploads, each part sent with its signed x-amz-checksum-sha256. Pause aborts
// the in-flight requests; Resume (or choosing the same file again after a
// reload) asks the server which parts it holds (ListMultipartUploads, then
// ListParts) and sends only the others: a server part counts as held when its
// size and SHA-256 equal the local part's.

import { presign } from "./api.js";
import * as s3 from "./s3.js";
import { sha256, toBase64 } from "./sha256.js";

export const MiB = 1024 * 1024;
export const SINGLE_PUT_LIMIT = 16 * MiB;
export const PARALLEL = 4;
const MAX_PARTS = 10000;
const RETRIES = 3;
const STORE = "tessera.console.uploads";

export function partSizeFor(size) {
  let part = 8 * MiB;
  while (Math.ceil(size / part) > MAX_PARTS) part *= 2;
  return part;
}

/** A FIFO semaphore: the 4 request slots every upload shares. */
class Slots {
  constructor(n) { this.free = n; this.waiting = []; }
  acquire() {
    if (this.free > 0) { this.free--; return Promise.resolve(); }
    return new Promise(resolve => this.waiting.push(resolve));
  }
  release() {
    const next = this.waiting.shift();
    if (next) next(); else this.free++;
  }
}
const slots = new Slots(PARALLEL);

// The local record of unfinished multipart uploads, keyed by the file's
// name, size and mtime: bucket, key, upload id and part size. No secret.
function records() { try { return JSON.parse(localStorage.getItem(STORE)) || {}; } catch { return {}; } }
function fingerprint(file) { return `${file.name}|${file.size}|${file.lastModified}`; }
function remember(file, value) {
  const all = records();
  if (value) all[fingerprint(file)] = value; else delete all[fingerprint(file)];
  try { localStorage.setItem(STORE, JSON.stringify(all)); } catch { /* storage full or off */ }
}

class Paused extends Error { constructor() { super("paused"); } }

/** XHR PUT with upload progress; resolves to the XHR once S3 answered 2xx. */
function put(url, body, headers, onProgress, track) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = e => onProgress(e.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve(xhr);
      reject(s3.errorFrom(xhr.status, xhr.responseText));
    };
    xhr.onerror = () => reject(Object.assign(new Error("network error"), { network: true }));
    xhr.onabort = () => reject(new Paused());
    track(xhr);
    xhr.send(body);
  });
}

export class Upload extends EventTarget {
  constructor(file, bucket, key) {
    super();
    this.file = file;
    this.bucket = bucket;
    this.key = key;
    this.total = file.size;
    this.multipart = file.size >= SINGLE_PUT_LIMIT;
    this.partSize = partSizeFor(file.size);
    this.state = "queued"; // queued, checking, uploading, paused, completing, done, failed, cancelled
    this.error = null;
    this.uploadId = null;
    this.done = new Map(); // part number -> {etag, sha256}
    this.hashes = new Map(); // part number -> base64 SHA-256 of the local part
    this.inflight = new Map(); // xhr -> bytes sent so far
    this.doneBytes = 0;
    this.sentParts = []; // part numbers this page sent (for the record)
    this.heldAtStart = 0; // parts the server already held when this run began
    this.run = 0; // bumps on every pause, so stale workers stop
  }

  get loaded() {
    let n = this.doneBytes;
    for (const v of this.inflight.values()) n += v;
    return Math.min(n, this.total);
  }
  get partCount() { return Math.max(1, Math.ceil(this.total / this.partSize)); }
  partRange(n) { const start = (n - 1) * this.partSize; return [start, Math.min(this.total, start + this.partSize)]; }

  changed() { this.dispatchEvent(new Event("change")); }
  setState(state, error = null) { this.state = state; this.error = error; this.changed(); }

  start() {
    if (["uploading", "checking", "completing", "done", "cancelled"].includes(this.state)) return;
    const run = ++this.run;
    this.setState("checking");
    (this.multipart ? this.runMultipart(run) : this.runSingle(run)).catch(e => {
      if (run !== this.run) return; // paused or cancelled meanwhile
      this.run++; // stops this run's other workers
      this.abortInflight();
      this.setState("failed", e);
    });
  }

  pause() {
    if (!["queued", "checking", "uploading"].includes(this.state)) return;
    this.run++;
    this.abortInflight();
    this.setState("paused");
  }

  async cancel() {
    this.run++;
    this.abortInflight();
    this.setState("cancelled");
    remember(this.file, null);
    if (this.uploadId) await s3.abortMultipart(this.bucket, this.key, this.uploadId).catch(() => {});
  }

  abortInflight() {
    for (const xhr of this.inflight.keys()) xhr.abort();
    this.inflight.clear();
    this.changed();
  }

  check(run) { if (run !== this.run) throw new Paused(); }

  /** One request in a shared slot, retried on network errors. */
  async request(run, makeUrl, body, headers, size) {
    for (let attempt = 0; ; attempt++) {
      await slots.acquire();
      let xhrRef = null;
      try {
        this.check(run);
        const url = await makeUrl();
        this.check(run);
        const xhr = await put(url, body, headers, loaded => {
          if (xhrRef && this.inflight.has(xhrRef)) { this.inflight.set(xhrRef, loaded); this.changed(); }
        }, x => { xhrRef = x; this.inflight.set(x, 0); });
        this.inflight.delete(xhr);
        this.doneBytes += size;
        this.changed();
        return xhr;
      } catch (e) {
        if (xhrRef) this.inflight.delete(xhrRef);
        if (e instanceof Paused || run !== this.run) throw new Paused();
        if (!e.network || attempt >= RETRIES) throw e;
      } finally {
        slots.release();
      }
      await new Promise(r => setTimeout(r, 500 * 2 ** attempt));
    }
  }

  async runSingle(run) {
    this.doneBytes = 0;
    const sum = toBase64(await sha256(await this.file.arrayBuffer()));
    this.check(run);
    this.setState("uploading");
    const headers = { "x-amz-checksum-sha256": sum };
    const extra = this.file.type ? { "Content-Type": this.file.type } : {};
    await this.request(run, () => presign({ method: "PUT", bucket: this.bucket, key: this.key, headers }),
      this.file, { ...headers, ...extra }, this.total);
    this.sentParts.push(1);
    this.setState("done");
  }

  async partHash(n) {
    if (!this.hashes.has(n)) {
      const [a, b] = this.partRange(n);
      this.hashes.set(n, toBase64(await sha256(await this.file.slice(a, b).arrayBuffer())));
    }
    return this.hashes.get(n);
  }

  /** The unfinished upload to continue: ours, the recorded one, or the newest listed. */
  async findUpload() {
    const listed = (await s3.listUploads(this.bucket, this.key)).filter(u => !u.algorithm || u.algorithm === "SHA256");
    if (this.uploadId && listed.some(u => u.uploadId === this.uploadId)) return this.uploadId;
    const record = records()[fingerprint(this.file)];
    if (record && record.bucket === this.bucket && record.key === this.key && record.partSize === this.partSize
      && listed.some(u => u.uploadId === record.uploadId)) return record.uploadId;
    return listed[0]?.uploadId ?? null;
  }

  async runMultipart(run) {
    this.uploadId = await this.findUpload();
    this.check(run);
    this.done.clear();
    this.doneBytes = 0;
    if (this.uploadId) {
      const held = await s3.listParts(this.bucket, this.key, this.uploadId);
      for (const part of held) {
        this.check(run);
        if (part.number > this.partCount || !part.sha256) continue;
        const [a, b] = this.partRange(part.number);
        if (part.size !== b - a) continue;
        if (await this.partHash(part.number) !== part.sha256) continue;
        this.done.set(part.number, { etag: part.etag, sha256: part.sha256 });
        this.doneBytes += part.size;
      }
      this.heldAtStart = this.done.size;
    } else {
      this.uploadId = await s3.createMultipart(this.bucket, this.key, this.file.type);
      this.heldAtStart = 0;
    }
    this.check(run);
    remember(this.file, { bucket: this.bucket, key: this.key, uploadId: this.uploadId, partSize: this.partSize });
    this.setState("uploading");

    const todo = [];
    for (let n = 1; n <= this.partCount; n++) if (!this.done.has(n)) todo.push(n);
    const worker = async () => {
      while (todo.length) {
        this.check(run);
        const n = todo.shift();
        const [a, b] = this.partRange(n);
        const sum = await this.partHash(n);
        this.check(run);
        const headers = { "x-amz-checksum-sha256": sum };
        const xhr = await this.request(run, () => presign({ method: "PUT", bucket: this.bucket, key: this.key,
          query: { partNumber: String(n), uploadId: this.uploadId }, headers }), this.file.slice(a, b), headers, b - a);
        const etag = xhr.getResponseHeader("ETag");
        if (!etag) throw new Error("the part's ETag is not readable (the S3 endpoint's CORS must expose ETag)");
        this.sentParts.push(n);
        this.done.set(n, { etag, sha256: sum });
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, todo.length) }, worker));
    this.check(run);
    this.setState("completing");
    const parts = Array.from(this.done.entries()).sort((x, y) => x[0] - y[0])
      .map(([number, p]) => ({ number, etag: p.etag, sha256: p.sha256 }));
    await s3.completeMultipart(this.bucket, this.key, this.uploadId, parts);
    this.check(run);
    remember(this.file, null);
    this.setState("done");
  }
}

/** Sign-out: the record of unfinished uploads goes too (ListMultipartUploads finds them again). */
export function forgetRecords() { try { localStorage.removeItem(STORE); } catch { /* storage off */ } }

/** Every upload of this page, for the transfer list and the overall bar. */
export const uploads = [];

export function startUpload(file, bucket, key) {
  // The same file to the same key again continues the earlier Upload object.
  const same = uploads.find(u => u.bucket === bucket && u.key === key && fingerprint(u.file) === fingerprint(file)
    && !["done", "cancelled"].includes(u.state));
  if (same) { same.file = file; same.start(); return same; }
  const upload = new Upload(file, bucket, key);
  uploads.push(upload);
  upload.start();
  return upload;
}

// A network that comes back resumes the uploads it failed.
addEventListener("online", () => {
  for (const u of uploads) if (u.state === "failed" && u.error?.network) u.start();
});
