// Downloads with a progress bar: fetch of a presigned GET, the body read as a
// stream into a list of Blobs. When the stream breaks (a lost network), the
// download continues from the bytes it has with `Range: bytes=N-` and
// `If-Range: <ETag>` (neither is an x-amz header, so they are sent unsigned);
// a 200 instead of 206 means the object changed, and it starts over. At the
// end the Blobs become one object URL, saved through a download link.

import { presign } from "./api.js";
import { errorOf } from "./s3.js";

const RETRIES = 5;

export class Download extends EventTarget {
  constructor(bucket, key) {
    super();
    this.bucket = bucket;
    this.key = key;
    this.name = key.split("/").pop() || "download";
    this.chunks = [];
    this.loaded = 0;
    this.total = 0;
    this.etag = null;
    this.state = "queued"; // queued, downloading, paused, interrupted, done, failed
    this.error = null;
    this.url = null;
    this.controller = null;
    this.resumes = 0;
  }

  changed() { this.dispatchEvent(new Event("change")); }
  setState(state, error = null) { this.state = state; this.error = error; this.changed(); }

  async start() {
    if (this.state === "downloading" || this.state === "done") return;
    this.setState("downloading");
    for (let attempt = 0; ; attempt++) {
      try {
        await this.fetchRest();
        break;
      } catch (e) {
        if (this.state === "paused") return;
        if (e.status || attempt >= RETRIES) { this.setState(e.status ? "failed" : "interrupted", e); return; }
        this.setState("downloading", e); // a broken stream: continue from this.loaded
        await new Promise(r => setTimeout(r, 300 * 2 ** attempt));
      }
    }
    // Always saved as bytes: a blob: URL has the console's origin, so an
    // object stored as text/html must never render as a page of it.
    const blob = new Blob(this.chunks, { type: "application/octet-stream" });
    this.chunks = [blob];
    this.url = URL.createObjectURL(blob);
    this.setState("done");
  }

  pause() {
    if (this.state !== "downloading") return;
    this.setState("paused");
    this.controller?.abort();
  }

  async fetchRest() {
    this.controller = new AbortController();
    const url = await presign({ method: "GET", bucket: this.bucket, key: this.key });
    const headers = {};
    if (this.loaded > 0 && this.etag) {
      headers.Range = `bytes=${this.loaded}-`;
      headers["If-Range"] = this.etag;
      this.resumes++;
    }
    const resp = await fetch(url, { headers, signal: this.controller.signal, cache: "no-store" });
    if (!resp.ok) throw await errorOf(resp);
    if (resp.status !== 206) { // the whole object: a first try, or it changed since
      this.chunks = [];
      this.loaded = 0;
      this.total = Number(resp.headers.get("Content-Length")) || 0;
      this.etag = resp.headers.get("ETag");
    }
    this.changed();
    const reader = resp.body.getReader();
    let pending = [], pendingBytes = 0;
    const keep = () => { // many small chunks become one Blob every 4 MiB
      if (pending.length) this.chunks.push(new Blob(pending));
      pending = [];
      pendingBytes = 0;
    };
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        pending.push(value);
        pendingBytes += value.length;
        this.loaded += value.length;
        if (pendingBytes >= 4 * 1024 * 1024) keep();
        this.changed();
      }
    } finally {
      keep();
    }
    if (this.total && this.loaded < this.total) throw new Error("the download ended early");
  }

  release() { if (this.url) URL.revokeObjectURL(this.url); this.url = null; this.chunks = []; }
}
