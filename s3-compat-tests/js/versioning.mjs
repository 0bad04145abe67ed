// Tessera bucket versioning scenario driven by the AWS SDK for JavaScript v3.
// Environment (from lib.sh): ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// WORK, TEST_BUCKET. Exits 1 if any check failed.
//
// Version ids are opaque strings: they are compared with the ids the server
// returned earlier, never with a format, except the literal "null". Every payload
// is random, so a version answered with another version's bytes shows in the
// SHA-256.

import { createHash, randomBytes } from "node:crypto";
import { createReadStream, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  ListObjectsV2Command,
  PutBucketVersioningCommand,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { call, check, client, describe, eq, error, run, same, sha256, step, summary } from "./checks.mjs";

const ENDPOINT = process.env.ENDPOINT;
const WORK = process.env.WORK;
const BUCKET = process.env.TEST_BUCKET || "compat";
const KEY = "doc.txt";
const OTHER = "zeta.bin"; // after KEY in byte order

const s3 = client();
// The payload mode of the last PutObject (printed: a stream body goes aws-chunked).
let lastPutMode = "";
s3.middlewareStack.add(
  (next, context) => async (args) => {
    if (context.commandName === "PutObjectCommand") {
      const h = args.request.headers || {};
      lastPutMode = `x-amz-content-sha256: ${h["x-amz-content-sha256"]}, content-encoding: ${h["content-encoding"]}, ` +
        `x-amz-trailer: ${h["x-amz-trailer"]}`;
    }
    return next(args);
  },
  { step: "finalizeRequest", priority: "low", name: "recordPayloadMode" }
);
const send = (cmd) => s3.send(cmd);
const body = async (out) => Buffer.from(await out.Body.transformToByteArray());
const quotedMd5 = (data) => `"${createHash("md5").update(data).digest("hex")}"`;
// A version id minted by the server: a non-empty string other than "null".
const isRealId = (id) => typeof id === "string" && id !== "" && id !== "null";

// The request must fail with HTTP STATUS and, if CODE is given, that error name.
// Returns the response headers (lower-case names), or undefined.
async function fails(what, code, status, fn) {
  try {
    const out = await fn();
    if (out?.Body?.destroy) out.Body.destroy();
    check(false, what, `expected ${status} ${code ?? "(any code)"}, got success: ${JSON.stringify(out?.$metadata)}`);
    return undefined;
  } catch (e) {
    const got = e.$metadata?.httpStatusCode;
    check(got === status && (code === undefined || e.name === code || e.Code === code), what,
      `expected ${status} ${code ?? "(any code)"}, got ${describe(e)}`);
    return e.$response?.headers ?? {};
  }
}

// Every version and marker of one ListObjectVersions answer, "KIND KEY ID LATEST".
// The SDK splits <Version> and <DeleteMarker> into two lists, so their relative
// order is lost here; the paged listing (one entry a page) keeps it.
const entriesOf = (out) => [
  ...(out.Versions ?? []).map((v) => `Version ${v.Key} ${v.VersionId} ${v.IsLatest}`),
  ...(out.DeleteMarkers ?? []).map((m) => `DeleteMarker ${m.Key} ${m.VersionId} ${m.IsLatest}`),
];

async function main() {
  console.log(`node ${process.version}, endpoint ${ENDPOINT}`);
  const seen = new Set(); // every real version id given out so far
  // ID must be a new real version id; returns it, or a placeholder if it is missing.
  const fresh = (what, id) => {
    check(isRealId(id) && !seen.has(id), `${what}: a new VersionId (${id})`,
      `VersionId: ${JSON.stringify(id)}; given out before: ${[...seen].join(", ")}`);
    if (isRealId(id)) seen.add(id);
    return isRealId(id) ? id : `missing-${what}`;
  };
  // GetObject (of VERSION if given) must answer DATA and VersionId EXPECT.
  const getIs = async (what, key, data, version, expect) => {
    const out = await call(`GetObject ${key} ${what}`, () =>
      send(new GetObjectCommand({ Bucket: BUCKET, Key: key, ...(version ? { VersionId: version } : {}) })));
    if (!out) return;
    const got = await body(out);
    eq(`GetObject ${key} ${what}: sha256 of the ${data.length} B expected`, sha256(got), sha256(data));
    eq(`GetObject ${key} ${what}: VersionId`, out.VersionId, expect);
    eq(`GetObject ${key} ${what}: ETag`, out.ETag, quotedMd5(data));
  };

  step("PutBucketVersioning Enabled");
  await call(`CreateBucket ${BUCKET}`, () => send(new CreateBucketCommand({ Bucket: BUCKET })));
  let out = await call("GetBucketVersioning on a fresh bucket", () =>
    send(new GetBucketVersioningCommand({ Bucket: BUCKET })));
  if (out) eq("a fresh bucket has no versioning Status", out.Status, undefined);
  await call("PutBucketVersioning Status=Enabled", () =>
    send(new PutBucketVersioningCommand({ Bucket: BUCKET, VersioningConfiguration: { Status: "Enabled" } })));
  out = await call("GetBucketVersioning", () => send(new GetBucketVersioningCommand({ Bucket: BUCKET })));
  if (out) eq("GetBucketVersioning: Status", out.Status, "Enabled");

  step(`two PutObject of ${KEY}: two versions (a Buffer body, then a file stream sent aws-chunked)`);
  const d1 = randomBytes(64 * 1024 + 3);
  const d2 = randomBytes(300 * 1024 + 5);
  const d2path = join(WORK, "v2.bin");
  writeFileSync(d2path, d2);
  const dOther = randomBytes(5000);
  out = await call(`PutObject ${KEY} version 1 (${d1.length} B, Buffer)`, () =>
    send(new PutObjectCommand({ Bucket: BUCKET, Key: KEY, Body: d1 })));
  if (out) eq("version 1: ETag is the quoted MD5", out.ETag, quotedMd5(d1));
  const v1 = fresh("PutObject version 1", out?.VersionId);
  out = await call(`PutObject ${KEY} version 2 (${d2.length} B, stream)`, () =>
    send(new PutObjectCommand({ Bucket: BUCKET, Key: KEY, Body: createReadStream(d2path), ContentLength: d2.length })));
  console.log(`  version 2 was sent with ${lastPutMode}`);
  if (out) eq("version 2: ETag is the quoted MD5", out.ETag, quotedMd5(d2));
  const v2 = fresh("PutObject version 2", out?.VersionId);
  check(v1 !== v2, "the two PutObject answers have distinct VersionIds", `${v1} and ${v2}`);
  out = await call(`PutObject ${OTHER}`, () => send(new PutObjectCommand({ Bucket: BUCKET, Key: OTHER, Body: dOther })));
  const vOther = fresh(`PutObject ${OTHER}`, out?.VersionId);

  step("GetObject / HeadObject by VersionId: each version's own bytes");
  await getIs("VersionId=<version 1>", KEY, d1, v1, v1);
  await getIs("VersionId=<version 2>", KEY, d2, v2, v2);
  await getIs("without VersionId (the latest, version 2)", KEY, d2, undefined, v2);
  for (const [what, id, data] of [["<version 1>", v1, d1], ["<version 2>", v2, d2]]) {
    out = await call(`HeadObject ${KEY} VersionId=${what}`, () =>
      send(new HeadObjectCommand({ Bucket: BUCKET, Key: KEY, VersionId: id })));
    if (out) {
      eq(`HeadObject VersionId=${what}: ContentLength`, out.ContentLength, data.length);
      eq(`HeadObject VersionId=${what}: ETag`, out.ETag, quotedMd5(data));
      eq(`HeadObject VersionId=${what}: VersionId`, out.VersionId, id);
    }
  }
  // The key was only ever written with versioning Enabled: it has no "null" version.
  await fails(`GetObject ${KEY} VersionId=null (no null version): 404 NoSuchVersion`, "NoSuchVersion", 404, () =>
    send(new GetObjectCommand({ Bucket: BUCKET, Key: KEY, VersionId: "null" })));

  step("DeleteObject without VersionId: a delete marker");
  out = await call(`DeleteObject ${KEY}`, () => send(new DeleteObjectCommand({ Bucket: BUCKET, Key: KEY })));
  if (out) eq("DeleteObject: DeleteMarker", out.DeleteMarker, true);
  const marker = fresh("DeleteObject (the marker)", out?.VersionId);
  let h = await fails(`GetObject ${KEY} (latest is a marker): 404 NoSuchKey`, "NoSuchKey", 404, () =>
    send(new GetObjectCommand({ Bucket: BUCKET, Key: KEY })));
  if (h) eq(`GetObject ${KEY} 404: header x-amz-delete-marker`, h["x-amz-delete-marker"], "true");
  h = await fails(`HeadObject ${KEY} (latest is a marker): 404`, undefined, 404, () =>
    send(new HeadObjectCommand({ Bucket: BUCKET, Key: KEY })));
  if (h) eq(`HeadObject ${KEY} 404: header x-amz-delete-marker`, h["x-amz-delete-marker"], "true");
  h = await fails(`GetObject ${KEY} VersionId=<the marker>: 405 MethodNotAllowed`, "MethodNotAllowed", 405, () =>
    send(new GetObjectCommand({ Bucket: BUCKET, Key: KEY, VersionId: marker })));
  if (h) eq(`GetObject VersionId=<the marker> 405: header x-amz-delete-marker`, h["x-amz-delete-marker"], "true");
  await getIs("VersionId=<version 2> behind the marker", KEY, d2, v2, v2);
  out = await call("ListObjectsV2", () => send(new ListObjectsV2Command({ Bucket: BUCKET })));
  if (out) eq(`ListObjectsV2 hides ${KEY} (its latest is a marker)`, (out.Contents ?? []).map((o) => o.Key), [OTHER]);

  step("ListObjectVersions: Versions and DeleteMarkers, IsLatest, newest first; paged by MaxKeys=1");
  out = await call("ListObjectVersions", () => send(new ListObjectVersionsCommand({ Bucket: BUCKET })));
  if (out) {
    eq("ListObjectVersions: IsTruncated", out.IsTruncated, false);
    eq("Versions: (Key, VersionId, IsLatest, Size, ETag), keys ascending, newest first",
      (out.Versions ?? []).map((v) => [v.Key, v.VersionId, v.IsLatest, v.Size, v.ETag]), [
        [KEY, v2, false, d2.length, quotedMd5(d2)],
        [KEY, v1, false, d1.length, quotedMd5(d1)],
        [OTHER, vOther, true, dOther.length, quotedMd5(dOther)],
      ]);
    eq("DeleteMarkers: (Key, VersionId, IsLatest)",
      (out.DeleteMarkers ?? []).map((m) => [m.Key, m.VersionId, m.IsLatest]), [[KEY, marker, true]]);
  }
  // One entry a page keeps S3's order, which the SDK's two lists lose.
  const paged = [];
  let params = {};
  let pagingOk = false;
  for (let page = 1; page <= 20; page++) {
    const p = await call(`ListObjectVersions MaxKeys=1 page ${page}`, () =>
      send(new ListObjectVersionsCommand({ Bucket: BUCKET, MaxKeys: 1, ...params })));
    if (!p) break;
    const got = entriesOf(p);
    check(got.length <= 1, `page ${page}: at most one entry`, got.join("\n"));
    paged.push(...got);
    if (!p.IsTruncated) {
      pagingOk = true;
      break;
    }
    if (!check(Boolean(p.NextKeyMarker && p.NextVersionIdMarker),
      `page ${page} is truncated and gives NextKeyMarker and NextVersionIdMarker`,
      `NextKeyMarker=${p.NextKeyMarker} NextVersionIdMarker=${p.NextVersionIdMarker}`)) break;
    params = { KeyMarker: p.NextKeyMarker, VersionIdMarker: p.NextVersionIdMarker };
  }
  if (pagingOk) {
    eq("paged by 1: every entry in S3's order (the marker first: it is the newest of its key)", paged, [
      `DeleteMarker ${KEY} ${marker} true`,
      `Version ${KEY} ${v2} false`,
      `Version ${KEY} ${v1} false`,
      `Version ${OTHER} ${vOther} true`,
    ]);
  }

  step("DeleteObject with the marker's VersionId: the object is back");
  out = await call(`DeleteObject ${KEY} VersionId=<the marker>`, () =>
    send(new DeleteObjectCommand({ Bucket: BUCKET, Key: KEY, VersionId: marker })));
  if (out) {
    eq("removing the marker: DeleteMarker", out.DeleteMarker, true);
    eq("removing the marker: VersionId is the marker's", out.VersionId, marker);
  }
  await getIs("without VersionId after removing the marker (version 2 again)", KEY, d2, undefined, v2);
  out = await call("HeadObject without VersionId", () => send(new HeadObjectCommand({ Bucket: BUCKET, Key: KEY })));
  if (out) eq("HeadObject: version 2 is the latest again", out.VersionId, v2);
  out = await call("ListObjectVersions", () => send(new ListObjectVersionsCommand({ Bucket: BUCKET, Prefix: KEY })));
  if (out) {
    eq(`${KEY}: no delete marker left`, out.DeleteMarkers ?? [], []);
    eq(`${KEY}: version 2 latest, version 1 not`, (out.Versions ?? []).map((v) => [v.VersionId, v.IsLatest]),
      [[v2, true], [v1, false]]);
  }
  out = await call("ListObjectsV2", () => send(new ListObjectsV2Command({ Bucket: BUCKET })));
  if (out) eq(`ListObjectsV2 shows ${KEY} again`, (out.Contents ?? []).map((o) => o.Key), [KEY, OTHER]);

  step("cleanup: a marker on every key, BucketNotEmpty, DeleteObjects of every version and marker by VersionId");
  out = await call(`DeleteObjects ${KEY}, ${OTHER} without VersionId (markers)`, () =>
    send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: [{ Key: KEY }, { Key: OTHER }] } })));
  if (out) {
    eq("DeleteObjects: no Errors", out.Errors ?? [], []);
    eq("DeleteObjects: both keys Deleted with DeleteMarker true",
      (out.Deleted ?? []).map((d) => [d.Key, d.DeleteMarker]).sort(), [[KEY, true], [OTHER, true]]);
    for (const d of out.Deleted ?? []) fresh(`DeleteObjects ${d.Key}: DeleteMarkerVersionId`, d.DeleteMarkerVersionId);
  }
  await error("DeleteBucket with versions and markers left fails with BucketNotEmpty", "BucketNotEmpty", () =>
    send(new DeleteBucketCommand({ Bucket: BUCKET })));
  out = await call("ListObjectVersions", () => send(new ListObjectVersionsCommand({ Bucket: BUCKET })));
  const all = [...(out?.Versions ?? []), ...(out?.DeleteMarkers ?? [])].map((v) => ({ Key: v.Key, VersionId: v.VersionId }));
  eq("3 versions and 2 markers are left", [out?.Versions?.length ?? 0, out?.DeleteMarkers?.length ?? 0], [3, 2]);
  out = await call(`DeleteObjects of the ${all.length} versions and markers by VersionId`, () =>
    send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: all } })));
  if (out) {
    eq("DeleteObjects: no Errors", out.Errors ?? [], []);
    const key = (o) => `${o.Key} ${o.VersionId}`;
    eq("DeleteObjects: every (Key, VersionId) reported Deleted",
      (out.Deleted ?? []).map(key).sort(), all.map(key).sort());
  }
  out = await call("ListObjectVersions after deleting everything", () =>
    send(new ListObjectVersionsCommand({ Bucket: BUCKET })));
  if (out) check(entriesOf(out).length === 0, "no version or marker left", entriesOf(out).join("\n"));
  await call(`DeleteBucket ${BUCKET}`, () => send(new DeleteBucketCommand({ Bucket: BUCKET })));
  await error("HeadBucket after delete: NotFound (404)", "NotFound", () => send(new HeadBucketCommand({ Bucket: BUCKET })));
  return summary("versioning-js-sdk");
}

run(main);
