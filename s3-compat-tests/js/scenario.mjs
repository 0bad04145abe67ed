// Tessera S3 compatibility scenario driven by the AWS SDK for JavaScript v3.
// Environment (from lib.sh): ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// FILES_DIR, TEST_BUCKET, BAD_BUCKET. Exits 1 if any check failed.

import { createHash } from "node:crypto";
import { createReadStream, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  CreateBucketCommand,
  HeadBucketCommand,
  ListBucketsCommand,
  GetBucketLocationCommand,
  PutObjectCommand,
  HeadObjectCommand,
  GetObjectCommand,
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  DeleteBucketCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  paginateListObjectsV2,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { call, check, client, eq, error, run, sha256, step, summary } from "./checks.mjs";

const ENDPOINT = process.env.ENDPOINT;
const FILES_DIR = process.env.FILES_DIR;
const BUCKET = process.env.TEST_BUCKET || "compat";
const BAD_BUCKET = process.env.BAD_BUCKET || "Bad_Bucket";
const MiB = 1024 * 1024;

const SIZE_FILES = ["empty.bin", "one.bin", "5mib-minus-1.bin", "5mib.bin", "20mib.bin"];
const HOSTILE_KEYS = [
  "hostile/with space.txt",
  "hostile/é/日本語.txt",
  "hostile/plus+sign.txt",
  "hostile/percent%20literal.txt",
  "hostile/amp&ersand.txt",
  'hostile/quote".txt',
  "hostile/a//b.txt",
  "/leading-slash.txt",
  "../x",
];
const MARKER_KEY = "dir/";

const quotedMd5 = (data) => `"${createHash("md5").update(data).digest("hex")}"`;
const hostileContent = (key) => Buffer.from(`key:${key}\n`, "utf8");
const byteSorted = (keys) => [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
// x-amz-copy-source must be URL-encoded by the caller with this SDK.
const copySource = (bucket, key) => `${bucket}/${encodeURIComponent(key).replace(/%2F/g, "/")}`;

// Records the payload mode of each request (x-amz-content-sha256, content-encoding).
const payloadModes = [];
const s3 = client();
s3.middlewareStack.add(
  (next, context) => async (args) => {
    const h = args.request.headers || {};
    payloadModes.push({
      op: context.commandName,
      sha256: h["x-amz-content-sha256"],
      encoding: h["content-encoding"],
      trailer: h["x-amz-trailer"],
    });
    return next(args);
  },
  { step: "finalizeRequest", priority: "low", name: "recordPayloadMode" }
);
const send = (cmd) => s3.send(cmd);
const body = async (out) => Buffer.from(await out.Body.transformToByteArray());

async function listAll(params, pageSize) {
  const keys = [];
  const prefixes = [];
  const sizes = {};
  for await (const page of paginateListObjectsV2({ client: s3, pageSize }, { Bucket: BUCKET, ...params })) {
    for (const o of page.Contents || []) {
      keys.push(o.Key);
      sizes[o.Key] = o.Size;
    }
    for (const p of page.CommonPrefixes || []) prefixes.push(p.Prefix);
  }
  return { keys, prefixes, sizes };
}

async function main() {
  console.log(`node ${process.version}, endpoint ${ENDPOINT}`);

  step("buckets: create, errors, list, location");
  await call(`CreateBucket ${BUCKET}`, () => send(new CreateBucketCommand({ Bucket: BUCKET })));
  await call(`HeadBucket ${BUCKET}`, () => send(new HeadBucketCommand({ Bucket: BUCKET })));
  await error(`CreateBucket ${BAD_BUCKET} fails with InvalidBucketName`, "InvalidBucketName", () =>
    send(new CreateBucketCommand({ Bucket: BAD_BUCKET }))
  );
  await call(`CreateBucket ${BUCKET} again succeeds (us-east-1's answer for your own bucket, as S3)`, () =>
    send(new CreateBucketCommand({ Bucket: BUCKET }))
  );
  let out = await call("ListBuckets", () => send(new ListBucketsCommand({})));
  if (out) eq("bucket names", (out.Buckets || []).map((b) => b.Name), [BUCKET]);
  out = await call("GetBucketLocation", () => send(new GetBucketLocationCommand({ Bucket: BUCKET })));
  if (out) eq("LocationConstraint is empty for us-east-1", out.LocationConstraint || "", "");

  step("PutObject: 0 B, 1 B, 5 MiB - 1, 5 MiB, 20 MiB (file streams: aws-chunked + CRC32 trailer)");
  const expected = new Map();
  for (const name of SIZE_FILES) {
    const data = readFileSync(join(FILES_DIR, name));
    const key = `sizes/${name}`;
    out = await call(`PutObject ${key} (${data.length} B, stream body)`, () =>
      send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: createReadStream(join(FILES_DIR, name)) }))
    );
    if (out) eq(`ETag of ${key} is the quoted MD5`, out.ETag, quotedMd5(data));
    expected.set(key, data);
  }
  const modes = payloadModes.filter((m) => m.op === "PutObjectCommand");
  console.log(`  payload modes used for stream PUTs: ${JSON.stringify(modes.slice(-1))}`);

  step("PutObject with content type and metadata (Buffer body: CRC32 header)");
  const top = readFileSync(join(FILES_DIR, "top.txt"));
  await call("PutObject top.txt with Content-Type and x-amz-meta-*", () =>
    send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: "top.txt",
        Body: top,
        ContentType: "text/plain; charset=utf-8",
        Metadata: { color: "blue", purpose: "compat test" },
      })
    )
  );
  expected.set("top.txt", top);

  step("PutObject: hostile keys and a directory marker");
  for (const key of HOSTILE_KEYS) {
    const data = hostileContent(key);
    out = await call(`PutObject key [${key}]`, () => send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: data })));
    if (out) eq(`ETag of [${key}]`, out.ETag, quotedMd5(data));
    expected.set(key, data);
  }
  await call("PutObject directory marker [dir/] (empty body)", () =>
    send(new PutObjectCommand({ Bucket: BUCKET, Key: MARKER_KEY, Body: "" }))
  );
  expected.set(MARKER_KEY, Buffer.alloc(0));

  step("HeadObject: sizes, ETags, content type, metadata");
  for (const [key, data] of expected) {
    out = await call(`HeadObject [${key}]`, () => send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })));
    if (out) {
      eq(`ContentLength of [${key}]`, out.ContentLength, data.length);
      eq(`ETag of [${key}]`, out.ETag, quotedMd5(data));
    }
  }
  out = await call("HeadObject top.txt (metadata)", () => send(new HeadObjectCommand({ Bucket: BUCKET, Key: "top.txt" })));
  if (out) {
    eq("ContentType of top.txt", out.ContentType, "text/plain; charset=utf-8");
    eq("Metadata of top.txt", out.Metadata, { color: "blue", purpose: "compat test" });
  }

  step("ListObjectsV2 / ListObjects: exact keys, sizes, prefixes, delimiters, paging, encoding-type=url");
  const allKeys = byteSorted(expected.keys());
  const cases = [
    ["all keys", {}, allKeys, []],
    ["delimiter / at the root", { Delimiter: "/" }, ["top.txt"], ["../", "/", "dir/", "hostile/", "sizes/"]],
    [
      "prefix hostile/ delimiter /",
      { Prefix: "hostile/", Delimiter: "/" },
      [
        "hostile/amp&ersand.txt",
        "hostile/percent%20literal.txt",
        "hostile/plus+sign.txt",
        'hostile/quote".txt',
        "hostile/with space.txt",
      ],
      ["hostile/a/", "hostile/é/"],
    ],
    ["prefix hostile/a/ delimiter /", { Prefix: "hostile/a/", Delimiter: "/" }, [], ["hostile/a//"]],
    ["prefix hostile/é/ (unicode prefix)", { Prefix: "hostile/é/" }, ["hostile/é/日本語.txt"], []],
    ["prefix dir/ delimiter / (the marker itself)", { Prefix: "dir/", Delimiter: "/" }, ["dir/"], []],
    [
      "prefix sizes/",
      { Prefix: "sizes/" },
      ["sizes/20mib.bin", "sizes/5mib-minus-1.bin", "sizes/5mib.bin", "sizes/empty.bin", "sizes/one.bin"],
      [],
    ],
    ["prefix nothing/ (no match)", { Prefix: "nothing/" }, [], []],
  ];
  for (const [label, params, keys, prefixes] of cases) {
    for (const pageSize of [undefined, 2]) {
      const name = `ListObjectsV2 ${label}${pageSize ? `, paged by ${pageSize}` : ""}`;
      const got = await call(name, () => listAll(params, pageSize));
      if (got) {
        eq(`${name}: keys`, got.keys, keys);
        eq(`${name}: common prefixes`, got.prefixes, prefixes);
        if (label === "all keys") {
          const sizes = Object.fromEntries([...expected].map(([k, v]) => [k, v.length]));
          eq(`${name}: sizes`, Object.fromEntries(Object.entries(got.sizes).sort()), Object.fromEntries(Object.entries(sizes).sort()));
        }
      }
    }
  }
  out = await call("ListObjectsV2 prefix hostile/ delimiter / EncodingType=url", () =>
    send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "hostile/", Delimiter: "/", EncodingType: "url" }))
  );
  if (out) {
    const raw = (out.Contents || []).map((o) => o.Key);
    const decode = (s) => decodeURIComponent(s.replace(/\+/g, " "));
    eq("encoded keys decode to the real keys", raw.map(decode), cases[2][2]);
    eq("encoded common prefixes decode to the real prefixes", (out.CommonPrefixes || []).map((p) => decode(p.Prefix)), cases[2][3]);
    // AWS answers '+' (measured); '%20' decodes the same in every SDK, so both pass.
    check(
      raw.includes("hostile/with+space.txt") || raw.includes("hostile/with%20space.txt"),
      "a space is encoded as '+' (as AWS does) or '%20'",
      JSON.stringify(raw)
    );
    check(raw.includes("hostile/plus%2Bsign.txt"), "a literal '+' is encoded as '%2B'", JSON.stringify(raw));
    eq("EncodingType echoed", out.EncodingType, "url");
  }
  out = await call("ListObjects (v1) delimiter / at the root", () =>
    send(new ListObjectsCommand({ Bucket: BUCKET, Delimiter: "/" }))
  );
  if (out) {
    eq("v1 root keys", (out.Contents || []).map((o) => o.Key), ["top.txt"]);
    eq("v1 root common prefixes", (out.CommonPrefixes || []).map((p) => p.Prefix), cases[1][3]);
  }

  step("GetObject: every object, SHA-256 compared with the source");
  for (const [key, data] of expected) {
    out = await call(`GetObject [${key}]`, () => send(new GetObjectCommand({ Bucket: BUCKET, Key: key })));
    if (out) eq(`[${key}] sha256 (${data.length} B)`, sha256(await body(out)), sha256(data));
  }
  out = await call("GetObject top.txt (headers)", () => send(new GetObjectCommand({ Bucket: BUCKET, Key: "top.txt" })));
  if (out) {
    await body(out);
    eq("GET Content-Type", out.ContentType, "text/plain; charset=utf-8");
    eq("GET Metadata", out.Metadata, { color: "blue", purpose: "compat test" });
  }

  step("GetObject with Range");
  const big = expected.get("sizes/20mib.bin");
  const n = big.length;
  for (const [range, first, last] of [
    ["bytes=1048576-2097151", 1048576, 2097151],
    ["bytes=0-0", 0, 0],
    ["bytes=-100", n - 100, n - 1],
    ["bytes=20971000-", 20971000, n - 1],
    ["bytes=20971000-99999999", 20971000, n - 1],
  ]) {
    out = await call(`GetObject sizes/20mib.bin Range ${range}`, () =>
      send(new GetObjectCommand({ Bucket: BUCKET, Key: "sizes/20mib.bin", Range: range }))
    );
    if (out) {
      eq(`${range}: bytes`, sha256(await body(out)), sha256(big.subarray(first, last + 1)));
      eq(`${range}: Content-Range`, out.ContentRange, `bytes ${first}-${last}/${n}`);
      eq(`${range}: Content-Length`, out.ContentLength, last - first + 1);
      eq(`${range}: HTTP status`, out.$metadata.httpStatusCode, 206);
    }
  }
  await error("Range bytes=0-0 on the empty object fails with InvalidRange", "InvalidRange", () =>
    send(new GetObjectCommand({ Bucket: BUCKET, Key: "sizes/empty.bin", Range: "bytes=0-0" }))
  );
  await error("Range beyond the end fails with InvalidRange", "InvalidRange", () =>
    send(new GetObjectCommand({ Bucket: BUCKET, Key: "sizes/one.bin", Range: "bytes=5-10" }))
  );

  step("lib-storage Upload of 20 MiB with partSize 64 MiB (one PutObject, no multipart)");
  const up = new Upload({
    client: s3,
    params: { Bucket: BUCKET, Key: "transfer/20mib.bin", Body: createReadStream(join(FILES_DIR, "20mib.bin")) },
    partSize: 64 * MiB,
    queueSize: 1,
  });
  out = await call("Upload.done()", () => up.done());
  out = await call("GetObject transfer/20mib.bin", () => send(new GetObjectCommand({ Bucket: BUCKET, Key: "transfer/20mib.bin" })));
  if (out) eq("lib-storage upload sha256", sha256(await body(out)), sha256(big));
  await call("DeleteObject transfer/20mib.bin", () => send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "transfer/20mib.bin" })));

  step("CopyObject: bytes, ETag, metadata (COPY and REPLACE), hostile source key");
  out = await call("CopyObject sizes/5mib.bin -> copies/5mib.bin", () =>
    send(new CopyObjectCommand({ Bucket: BUCKET, Key: "copies/5mib.bin", CopySource: copySource(BUCKET, "sizes/5mib.bin") }))
  );
  if (out) eq("copy result ETag", out.CopyObjectResult?.ETag, quotedMd5(expected.get("sizes/5mib.bin")));
  out = await call("GetObject copies/5mib.bin", () => send(new GetObjectCommand({ Bucket: BUCKET, Key: "copies/5mib.bin" })));
  if (out) eq("copy has the source's bytes", sha256(await body(out)), sha256(expected.get("sizes/5mib.bin")));
  await call("CopyObject top.txt -> copies/top.txt (metadata directive COPY)", () =>
    send(new CopyObjectCommand({ Bucket: BUCKET, Key: "copies/top.txt", CopySource: copySource(BUCKET, "top.txt") }))
  );
  out = await call("HeadObject copies/top.txt", () => send(new HeadObjectCommand({ Bucket: BUCKET, Key: "copies/top.txt" })));
  if (out) {
    eq("copied ContentType", out.ContentType, "text/plain; charset=utf-8");
    eq("copied Metadata", out.Metadata, { color: "blue", purpose: "compat test" });
  }
  await call("CopyObject top.txt -> copies/top-replaced.txt (metadata directive REPLACE)", () =>
    send(
      new CopyObjectCommand({
        Bucket: BUCKET,
        Key: "copies/top-replaced.txt",
        CopySource: copySource(BUCKET, "top.txt"),
        MetadataDirective: "REPLACE",
        ContentType: "application/x-tessera-test",
        Metadata: { color: "green" },
      })
    )
  );
  out = await call("HeadObject copies/top-replaced.txt", () =>
    send(new HeadObjectCommand({ Bucket: BUCKET, Key: "copies/top-replaced.txt" }))
  );
  if (out) {
    eq("replaced ContentType", out.ContentType, "application/x-tessera-test");
    eq("replaced Metadata", out.Metadata, { color: "green" });
  }
  const srcKey = "hostile/é/日本語.txt";
  const dstKey = "copies/é 日本 + copy.txt";
  await call(`CopyObject [${srcKey}] -> [${dstKey}]`, () =>
    send(new CopyObjectCommand({ Bucket: BUCKET, Key: dstKey, CopySource: copySource(BUCKET, srcKey) }))
  );
  out = await call(`GetObject [${dstKey}]`, () => send(new GetObjectCommand({ Bucket: BUCKET, Key: dstKey })));
  if (out) eq("hostile copy has the source's bytes", (await body(out)).toString("utf8"), hostileContent(srcKey).toString("utf8"));

  step("delete: bucket not empty, single, missing key, batch (no Content-MD5: CRC32), bucket");
  await error("DeleteBucket of a non-empty bucket fails with BucketNotEmpty", "BucketNotEmpty", () =>
    send(new DeleteBucketCommand({ Bucket: BUCKET }))
  );
  await call("DeleteObject top.txt", () => send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "top.txt" })));
  await error("HeadObject top.txt after delete: NotFound (404)", "NotFound", () =>
    send(new HeadObjectCommand({ Bucket: BUCKET, Key: "top.txt" }))
  );
  await error("GetObject top.txt after delete fails with NoSuchKey", "NoSuchKey", () =>
    send(new GetObjectCommand({ Bucket: BUCKET, Key: "top.txt" }))
  );
  await call("DeleteObject of a missing key succeeds", () => send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "no/such/key" })));
  const remaining = byteSorted([
    ...[...expected.keys()].filter((k) => k !== "top.txt"),
    "copies/5mib.bin",
    "copies/top.txt",
    "copies/top-replaced.txt",
    dstKey,
  ]);
  out = await call(`DeleteObjects of the ${remaining.length} remaining keys`, () =>
    send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: remaining.map((Key) => ({ Key })), Quiet: false } }))
  );
  if (out) {
    eq("DeleteObjects: every key reported Deleted", byteSorted((out.Deleted || []).map((d) => d.Key)), remaining);
    eq("DeleteObjects: no Errors", out.Errors || [], []);
  }
  const got = await call("ListObjectsV2 after deleting everything", () => listAll({}, undefined));
  if (got) eq("no key left", got.keys, []);
  await call(`DeleteBucket ${BUCKET}`, () => send(new DeleteBucketCommand({ Bucket: BUCKET })));
  await error("HeadBucket after delete: NotFound (404)", "NotFound", () => send(new HeadBucketCommand({ Bucket: BUCKET })));

  return summary("js-sdk");
}

run(main);
