// Tessera multipart + ranged GET scenario driven by the AWS SDK for JavaScript v3
// (@aws-sdk/lib-storage Upload, GetObject with Range and PartNumber).
// Environment (from lib.sh): ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// WORK, TEST_BUCKET. Exits 1 if any check failed.

import { createHash, randomBytes } from "node:crypto";
import { createReadStream, writeFileSync } from "node:fs";
import { crc32 } from "node:zlib";
import { join } from "node:path";
import {
  CreateBucketCommand,
  HeadObjectCommand,
  GetObjectCommand,
  DeleteObjectCommand,
  DeleteBucketCommand,
  ListMultipartUploadsCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { call, check, client, describe, eq, run, sha256, step, summary } from "./checks.mjs";

const ENDPOINT = process.env.ENDPOINT;
const WORK = process.env.WORK;
const BUCKET = process.env.TEST_BUCKET || "compat";
const MiB = 1024 * 1024;

const md5 = (data) => createHash("md5").update(data).digest();
// The quoted ETag of DATA uploaded in parts of PART bytes: md5(part MD5s)-N.
function multipartEtag(data, part) {
  const digests = [];
  for (let i = 0; i < data.length; i += part) digests.push(md5(data.subarray(i, i + part)));
  return `"${createHash("md5").update(Buffer.concat(digests)).digest("hex")}-${digests.length}"`;
}

// COMPOSITE x-amz-checksum-crc32 of DATA in parts of PART bytes: CRC32 of the part CRC32s, -N.
function compositeCrc32(data, part) {
  const crcs = [];
  for (let i = 0; i < data.length; i += part) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(crc32(data.subarray(i, i + part)));
    crcs.push(b);
  }
  const whole = Buffer.alloc(4);
  whole.writeUInt32BE(crc32(Buffer.concat(crcs)));
  return `${whole.toString("base64")}-${crcs.length}`;
}

// Counts requests per command, and the most UploadPart requests in flight at once.
const counts = {};
let inflight = 0;
let maxInflight = 0;
const s3 = client();
s3.middlewareStack.add(
  (next, context) => async (args) => {
    const op = context.commandName;
    counts[op] = (counts[op] || 0) + 1;
    if (op !== "UploadPartCommand") return next(args);
    maxInflight = Math.max(maxInflight, ++inflight);
    try {
      return await next(args);
    } finally {
      inflight -= 1;
    }
  },
  { step: "initialize", name: "countRequests" }
);
const send = (cmd) => s3.send(cmd);
const body = async (out) => Buffer.from(await out.Body.transformToByteArray());

async function main() {
  console.log(`node ${process.version}, endpoint ${ENDPOINT}`);
  await call(`CreateBucket ${BUCKET}`, () => send(new CreateBucketCommand({ Bucket: BUCKET })));

  step("lib-storage Upload of 30 MiB + 1 KiB from a stream: partSize 5 MiB, queueSize 4 (7 parts, CRC32)");
  const data = randomBytes(30 * MiB + 1024);
  const path = join(WORK, "30mib.bin");
  writeFileSync(path, data);
  const key = "lib-storage/30mib.bin";
  const upload = new Upload({
    client: s3,
    params: { Bucket: BUCKET, Key: key, Body: createReadStream(path), ContentType: "application/x-js-upload" },
    partSize: 5 * MiB,
    queueSize: 4,
  });
  let out = await call("Upload.done()", () => upload.done());
  if (out) eq("Complete ETag = md5(part MD5s)-7", out.ETag, multipartEtag(data, 5 * MiB));
  eq("1 CreateMultipartUpload, 7 UploadPart, 1 CompleteMultipartUpload",
    [counts.CreateMultipartUploadCommand, counts.UploadPartCommand, counts.CompleteMultipartUploadCommand], [1, 7, 1]);
  console.log(`  most UploadPart requests in flight at once: ${maxInflight}`);
  out = await call(`HeadObject ${key} ChecksumMode=ENABLED`, () =>
    send(new HeadObjectCommand({ Bucket: BUCKET, Key: key, ChecksumMode: "ENABLED" }))
  );
  if (out) {
    eq("ContentLength", out.ContentLength, data.length);
    eq("ContentType", out.ContentType, "application/x-js-upload");
    eq("ETag", out.ETag, multipartEtag(data, 5 * MiB));
    eq("ChecksumType (lib-storage asks for CRC32: COMPOSITE)", out.ChecksumType, "COMPOSITE");
    eq("ChecksumCRC32 = CRC32 of the part CRC32s, -7", out.ChecksumCRC32, compositeCrc32(data, 5 * MiB));
  }

  step("GetObject: whole, Range, PartNumber; a download resumed with Range");
  out = await call("GetObject (whole)", () => send(new GetObjectCommand({ Bucket: BUCKET, Key: key })));
  if (out) eq("whole object sha256", sha256(await body(out)), sha256(data));
  const n = data.length;
  for (const [first, last] of [
    [5 * MiB - 10, 5 * MiB + 9], // across the part 1 / part 2 boundary
    [3 * MiB, 17 * MiB], // spans four parts
    [n - 1024, n - 1], // the short last part
  ]) {
    const range = `bytes=${first}-${last}`;
    out = await call(`GetObject Range ${range} ChecksumMode=ENABLED`, () =>
      send(new GetObjectCommand({ Bucket: BUCKET, Key: key, Range: range, ChecksumMode: "ENABLED" }))
    );
    if (out) {
      eq(`${range}: status`, out.$metadata.httpStatusCode, 206);
      eq(`${range}: bytes`, sha256(await body(out)), sha256(data.subarray(first, last + 1)));
      eq(`${range}: Content-Range`, out.ContentRange, `bytes ${first}-${last}/${n}`);
      eq(`${range}: no whole-object checksum on a 206`, out.ChecksumCRC32, undefined);
      eq(`${range}: no checksum type on a 206`, out.ChecksumType, undefined);
    }
  }
  out = await call("GetObject PartNumber=2", () => send(new GetObjectCommand({ Bucket: BUCKET, Key: key, PartNumber: 2 })));
  if (out) {
    eq("part 2: PartsCount", out.PartsCount, 7);
    eq("part 2: Content-Range", out.ContentRange, `bytes ${5 * MiB}-${10 * MiB - 1}/${n}`);
    eq("part 2: bytes", sha256(await body(out)), sha256(data.subarray(5 * MiB, 10 * MiB)));
  }
  // A download cut after 12345678 bytes, resumed from there with an open-ended Range.
  const have = 12345678;
  const head = await call(`GetObject Range bytes=0-${have - 1} (first piece)`, () =>
    send(new GetObjectCommand({ Bucket: BUCKET, Key: key, Range: `bytes=0-${have - 1}` }))
  );
  const tail = await call(`GetObject Range bytes=${have}- (resume)`, () =>
    send(new GetObjectCommand({ Bucket: BUCKET, Key: key, Range: `bytes=${have}-`, IfMatch: out?.ETag }))
  );
  if (head && tail) {
    eq("resume: Content-Range", tail.ContentRange, `bytes ${have}-${n - 1}/${n}`);
    eq("resumed download = the object", sha256(Buffer.concat([await body(head), await body(tail)])), sha256(data));
  }

  step("lib-storage Upload.abort() after the first part: the SDK aborts the multipart upload");
  const big = randomBytes(25 * MiB);
  const aborted = new Upload({
    client: s3,
    params: { Bucket: BUCKET, Key: "lib-storage/aborted.bin", Body: big },
    partSize: 5 * MiB,
    queueSize: 1,
  });
  aborted.on("httpUploadProgress", () => aborted.abort());
  const before = counts.AbortMultipartUploadCommand || 0;
  try {
    await aborted.done();
    check(false, "Upload.done() rejects after abort()", "it resolved");
  } catch (e) {
    check(e.name === "AbortError", "Upload.done() rejects with AbortError", describe(e));
  }
  // done() rejects at once; the upload loop notices the abort and sends
  // AbortMultipartUpload a little later: wait up to 10 s for it.
  for (let i = 0; i < 100 && !((counts.AbortMultipartUploadCommand || 0) > before && inflight === 0); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, 200));
  eq("the SDK sent AbortMultipartUpload", (counts.AbortMultipartUploadCommand || 0) - before, 1);
  out = await call("ListMultipartUploads", () => send(new ListMultipartUploadsCommand({ Bucket: BUCKET })));
  if (out) eq("no unfinished upload left", (out.Uploads || []).map((u) => u.Key), []);
  await call("HeadObject lib-storage/aborted.bin: NotFound", async () => {
    try {
      await send(new HeadObjectCommand({ Bucket: BUCKET, Key: "lib-storage/aborted.bin" }));
    } catch (e) {
      if (e.name === "NotFound") return;
      throw e;
    }
    throw new Error("the aborted object exists");
  });

  step("cleanup");
  await call(`DeleteObject ${key}`, () => send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key })));
  await call(`DeleteBucket ${BUCKET}`, () => send(new DeleteBucketCommand({ Bucket: BUCKET })));

  return summary("js-sdk multipart");
}

run(main);
