// S3 operations, sent by the page itself straight to the S3 endpoint with
// presigned URLs (the console signs; the page never holds the secret), and
// S3's XML answers read with DOMParser.

import { presign } from "./api.js";
import { sha256, toBase64 } from "./sha256.js";

export class S3Error extends Error {
  constructor(status, code, message) {
    super(message ? `${code}: ${message}` : code);
    this.status = status;
    this.code = code;
  }
}

const parser = new DOMParser();
function parse(text) { return parser.parseFromString(text, "application/xml").documentElement; }
/** The direct children of node named name (S3's XML has a default namespace). */
function kids(node, name) { return Array.from(node.children).filter(c => c.localName === name); }
function kid(node, name) { return kids(node, name)[0]?.textContent ?? null; }

/** The S3Error of a refused request: S3's XML error document, or the status. */
export function errorFrom(status, text) {
  let code = `HTTP ${status}`, message = "";
  try {
    const root = parse(text);
    if (root.localName === "Error") { code = kid(root, "Code") || code; message = kid(root, "Message") || ""; }
  } catch { /* HEAD answers have no body */ }
  if (status === 404 && code.startsWith("HTTP")) code = "NotFound";
  if (status === 403 && code.startsWith("HTTP")) code = "AccessDenied";
  return new S3Error(status, code, message);
}

export async function errorOf(resp) { return errorFrom(resp.status, await resp.text()); }

/**
 * Presigns spec ({method, bucket, key?, query?, headers?}) and sends it with
 * fetch; signed headers go as signed, `extra` headers unsigned (never x-amz-*).
 */
export async function send(spec, { body, extra = {}, signal } = {}) {
  const url = await presign(spec);
  const resp = await fetch(url, {
    method: spec.method, body, signal, cache: "no-store",
    headers: { ...(spec.headers || {}), ...extra },
  });
  if (!resp.ok) throw await errorOf(resp);
  return resp;
}

async function xml(spec, options) { return parse(await (await send(spec, options)).text()); }

export async function listBuckets() {
  const root = await xml({ method: "GET", bucket: "" }); // no bucket: the service, GET /
  const list = root.getElementsByTagName("Bucket");
  return Array.from(list, b => ({ name: kid(b, "Name"), created: kid(b, "CreationDate") }));
}

export async function createBucket(bucket) { await send({ method: "PUT", bucket }); }
export async function deleteBucket(bucket) { await send({ method: "DELETE", bucket }); }

/** One page of ListObjectsV2: {folders, objects, next (token or null)}. */
export async function listObjects(bucket, { prefix = "", delimiter = "/", token = null, maxKeys = 1000 } = {}) {
  const query = { "list-type": "2", prefix, "max-keys": String(maxKeys) };
  if (delimiter) query.delimiter = delimiter;
  if (token) query["continuation-token"] = token;
  const root = await xml({ method: "GET", bucket, query });
  return {
    folders: kids(root, "CommonPrefixes").map(p => kid(p, "Prefix")),
    objects: kids(root, "Contents").map(c => ({
      key: kid(c, "Key"), size: Number(kid(c, "Size")), lastModified: kid(c, "LastModified"), etag: kid(c, "ETag"),
    })),
    next: kid(root, "IsTruncated") === "true" ? kid(root, "NextContinuationToken") : null,
  };
}

export async function deleteObject(bucket, key) { await send({ method: "DELETE", bucket, key }); }

const esc = s => s.replace(/[<>&"']/g, c => `&#${c.charCodeAt(0)};`);

/** DeleteObjects for up to 1000 keys; returns the keys S3 refused, with why. */
export async function deleteObjects(bucket, keys) {
  const body = `<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>true</Quiet>${
    keys.map(k => `<Object><Key>${esc(k)}</Key></Object>`).join("")}</Delete>`;
  const bytes = new TextEncoder().encode(body);
  const checksum = toBase64(await sha256(bytes));
  const root = await xml({ method: "POST", bucket, query: { delete: "" }, headers: { "x-amz-checksum-sha256": checksum } },
    { body: bytes, extra: { "Content-Type": "application/xml" } });
  return kids(root, "Error").map(e => ({ key: kid(e, "Key"), code: kid(e, "Code"), message: kid(e, "Message") }));
}

/** Every key under prefix, 1000 at a time: calls onPage(keys) for each page. */
export async function forEachKeyPage(bucket, prefix, onPage) {
  let token = null;
  do {
    const page = await listObjects(bucket, { prefix, delimiter: "", token });
    await onPage(page.objects.map(o => o.key));
    token = page.next;
  } while (token);
}

/** HeadObject: the headers the browser may read (CORS-exposed ones). */
export async function headObject(bucket, key) {
  const resp = await send({ method: "HEAD", bucket, key });
  return resp.headers;
}

export async function objectAttributes(bucket, key) {
  const root = await xml({ method: "GET", bucket, key, query: { attributes: "" },
    headers: { "x-amz-object-attributes": "ETag,Checksum,ObjectSize,ObjectParts", "x-amz-max-parts": "1" } });
  const checksum = Array.from(root.getElementsByTagName("Checksum"))[0];
  let sum = null;
  if (checksum) {
    const value = Array.from(checksum.children).find(c => c.localName.startsWith("Checksum") && c.localName !== "ChecksumType");
    if (value) sum = { algorithm: value.localName.slice("Checksum".length), value: value.textContent, type: kid(checksum, "ChecksumType") };
  }
  const parts = Array.from(root.getElementsByTagName("ObjectParts"))[0];
  return { etag: kid(root, "ETag"), size: kid(root, "ObjectSize"), checksum: sum,
    parts: parts ? kid(parts, "PartsCount") ?? kid(parts, "TotalPartsCount") : null };
}

/** The versions (and delete markers) of one key, newest first. */
export async function listVersions(bucket, key) {
  const out = [];
  let keyMarker = null, idMarker = null;
  for (;;) {
    const query = { versions: "", prefix: key, "max-keys": "1000" };
    if (keyMarker !== null) { query["key-marker"] = keyMarker; if (idMarker) query["version-id-marker"] = idMarker; }
    const root = await xml({ method: "GET", bucket, query });
    for (const v of root.children) {
      if ((v.localName !== "Version" && v.localName !== "DeleteMarker") || kid(v, "Key") !== key) continue;
      out.push({ versionId: kid(v, "VersionId"), latest: kid(v, "IsLatest") === "true", deleteMarker: v.localName === "DeleteMarker",
        size: v.localName === "Version" ? Number(kid(v, "Size")) : null, lastModified: kid(v, "LastModified"), etag: kid(v, "ETag") });
    }
    if (kid(root, "IsTruncated") !== "true" || kid(root, "NextKeyMarker") !== key) return out;
    keyMarker = kid(root, "NextKeyMarker");
    idMarker = kid(root, "NextVersionIdMarker");
  }
}

export async function createMultipart(bucket, key, contentType) {
  const extra = contentType ? { "Content-Type": contentType } : {};
  const root = await xml({ method: "POST", bucket, key, query: { uploads: "" },
    headers: { "x-amz-checksum-algorithm": "SHA256" } }, { extra });
  return kid(root, "UploadId");
}

/** The unfinished uploads of exactly this key, newest first. */
export async function listUploads(bucket, key) {
  const out = [];
  let keyMarker = null, idMarker = null;
  for (;;) {
    const query = { uploads: "", prefix: key, "max-uploads": "1000" };
    if (keyMarker !== null) { query["key-marker"] = keyMarker; query["upload-id-marker"] = idMarker || ""; }
    const root = await xml({ method: "GET", bucket, query });
    for (const u of kids(root, "Upload")) {
      if (kid(u, "Key") !== key) continue;
      out.push({ uploadId: kid(u, "UploadId"), initiated: kid(u, "Initiated"), algorithm: kid(u, "ChecksumAlgorithm") });
    }
    if (kid(root, "IsTruncated") !== "true") break;
    keyMarker = kid(root, "NextKeyMarker");
    idMarker = kid(root, "NextUploadIdMarker");
    if (keyMarker !== key) break;
  }
  return out.sort((a, b) => (a.initiated < b.initiated ? 1 : a.initiated > b.initiated ? -1 : 0));
}

/** Every part the server holds for an upload: [{number, size, etag, sha256}]. */
export async function listParts(bucket, key, uploadId) {
  const out = [];
  let marker = "0";
  for (;;) {
    const root = await xml({ method: "GET", bucket, key, query: { uploadId, "part-number-marker": marker, "max-parts": "1000" } });
    for (const p of kids(root, "Part")) {
      out.push({ number: Number(kid(p, "PartNumber")), size: Number(kid(p, "Size")), etag: kid(p, "ETag"),
        sha256: kid(p, "ChecksumSHA256") });
    }
    if (kid(root, "IsTruncated") !== "true") return out;
    marker = kid(root, "NextPartNumberMarker");
  }
}

export async function completeMultipart(bucket, key, uploadId, parts) {
  const body = `<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUpload>${parts.map(p =>
    `<Part><PartNumber>${p.number}</PartNumber><ETag>${esc(p.etag)}</ETag>${
      p.sha256 ? `<ChecksumSHA256>${p.sha256}</ChecksumSHA256>` : ""}</Part>`).join("")}</CompleteMultipartUpload>`;
  const root = await xml({ method: "POST", bucket, key, query: { uploadId } },
    { body, extra: { "Content-Type": "application/xml" } });
  if (root.localName === "Error") throw new S3Error(200, kid(root, "Code"), kid(root, "Message"));
  return { etag: kid(root, "ETag") };
}

export async function abortMultipart(bucket, key, uploadId) {
  await send({ method: "DELETE", bucket, key, query: { uploadId } });
}

/** A presigned GET to hand out (a share link), valid for `expires` seconds. */
export function shareLink(bucket, key, expires) {
  return presign({ method: "GET", bucket, key, expires });
}
