// What both JS scenarios share: the S3 client for $ENDPOINT and the check
// harness (ok / FAIL lines, a summary, the exit code).

import { createHash } from "node:crypto";
import { S3Client } from "@aws-sdk/client-s3";

export const sha256 = (data) => createHash("sha256").update(data).digest("hex");
export const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// A client for $ENDPOINT: path style, no retries (a retry would hide a failure).
export const client = () =>
  new S3Client({
    endpoint: process.env.ENDPOINT,
    region: "us-east-1",
    forcePathStyle: true,
    maxAttempts: 1,
    credentials: {
      accessKeyId: process.env.AWS_ACCESS_KEY_ID,
      secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
    },
  });

let total = 0;
const failed = [];
export const step = (what) => console.log(`\n== ${what}`);

export function check(ok, what, detail = "") {
  total += 1;
  console.log(`  ${ok ? "ok  " : "FAIL"}  ${what}`);
  if (!ok) {
    for (const line of String(detail).split("\n")) console.log(`        ${line}`);
    failed.push(what);
  }
  return ok;
}

export const eq = (what, actual, expected) =>
  check(same(actual, expected), what, `expected: ${JSON.stringify(expected)}\nactual:   ${JSON.stringify(actual)}`);

export function describe(e) {
  const meta = e.$metadata ? ` HTTP ${e.$metadata.httpStatusCode}` : "";
  const resp = e.$response ? `\nheaders ${JSON.stringify(e.$response.headers)}` : "";
  return `${e.name}: ${e.message}${meta}${resp}`;
}

export async function call(what, fn) {
  try {
    const out = await fn();
    check(true, what);
    return out;
  } catch (e) {
    check(false, what, describe(e));
    return undefined;
  }
}

// The request must fail with this error code (the SDK's error name; NotFound for HEAD 404).
export async function error(what, code, fn) {
  try {
    const out = await fn();
    return check(false, what, `expected ${code}, got success: ${JSON.stringify(out.$metadata)}`);
  } catch (e) {
    return check(e.name === code || e.Code === code, what, `expected ${code}, got ${describe(e)}`);
  }
}

// Prints the summary; returns the exit code (1 if any check failed).
export function summary(name) {
  console.log();
  if (failed.length === 0) {
    console.log(`${name}: all ${total} checks passed`);
    return 0;
  }
  console.log(`${name}: ${failed.length} of ${total} checks FAILED:`);
  for (const f of failed) console.log(`  - ${f}`);
  return 1;
}

// Runs the scenario's main and exits with its code (2 if it threw).
export function run(main) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(e);
      process.exit(2);
    }
  );
}
