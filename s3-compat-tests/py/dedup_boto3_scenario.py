"""Content stored once (the unique-file table), seen from real clients: boto3,
a presigned URL used with urllib, and aws-cli v2 (see README.md).

What the server documents (README.md, docs/architecture.md): a body stored as a
file (over 32 KiB) whose SHA-256 is known is stored once when a live blob holds
the same bytes. The SHA-256 is known when the client declared it: a hex
x-amz-content-sha256 (SigV4 clients sign the payload over plain HTTP), or
x-amz-checksum-sha256 in a header or a trailer; or when the body is at most
64 KiB (hashed inline). A large body sent UNSIGNED-PAYLOAD with no SHA-256
checksum is not shared.

What is checked, with `tessera stats --json` on the running server's data
folder before and after each step (and the files under DATA/blobs, which must
match stats' stored_bytes and distinct_blobs once the dropped copies are gone):
1. boto3 put_object of one 1 MiB random body under 3 keys in 2 buckets: each
   request carried the body's hex SHA-256 in x-amz-content-sha256; each
   get_object gives the bytes (MD5) and the MD5 as ETag; stored_bytes grew by
   1 MiB, distinct_blobs by 1, logical_bytes by 3 MiB. Then a presigned PUT
   (UNSIGNED-PAYLOAD) of the same body: stored once more, as documented; and
   one with a signed x-amz-checksum-sha256 header: shared.
2. boto3 upload_file of a 20 MiB file in 8 MiB parts, under two keys, then a
   third time with ChecksumAlgorithm='SHA256': what botocore sent for each
   UploadPart is printed, and a part is expected to be shared exactly when its
   SHA-256 was declared and an earlier equal part's was too. With botocore
   over HTTP every part carries its hex SHA-256, so stored_bytes grows by
   20 MiB once. Both downloads are byte-exact, with the multipart ETag.
3. aws-cli v2 `aws s3 cp` of one 5 MiB file to two keys (single PUTs, the
   payload's SHA-256 signed; the request's headers are read from --debug):
   stored_bytes grows by 5 MiB once; `aws s3 cp` down is byte-exact.
4. Deleting every copy but one (the first writer's included) leaves the last
   one readable and stored_bytes as it was; deleting it too brings stats back
   to the baseline, and the blob files are unlinked (polled, up to 10 s). The
   same body put again afterwards is stored anew (the index row went with the
   blob) and shared by its next copy.
"""

import ast
import base64
import hashlib
import json
import os
import re
import subprocess
import time
import urllib.request

import boto3
from boto3.s3.transfer import TransferConfig

from compat import BUCKET, Checks, client, multipart_etag, quoted_md5

MiB = 1024 * 1024
WORK = os.environ["WORK"]
DATA = os.environ["DEDUP_DATA"]
TESSERA_BIN = os.environ["TESSERA_BIN"]
AWS_BIN = os.environ.get("AWS_BIN", "/usr/bin/aws")
ENDPOINT = os.environ["ENDPOINT"]

BUCKET_A = BUCKET + "-dedup-a"
BUCKET_B = BUCKET + "-dedup-b"
FIELDS = ("objects", "logical_bytes", "stored_bytes", "distinct_blobs")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def md5(data):
    return hashlib.md5(data).hexdigest()


def size_str(n):
    return f"{n // MiB} MiB" if n % MiB == 0 else f"{n} B"


def stats():
    """`tessera stats --data DATA --json` (through the running server)."""
    out = subprocess.run(
        [TESSERA_BIN, "stats", "--data", DATA, "--json"],
        env=os.environ, capture_output=True, text=True, timeout=60,
    )
    if out.returncode != 0:
        raise RuntimeError(f"tessera stats exited {out.returncode}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def blob_files():
    """(file count, bytes) under DATA/blobs."""
    count = size = 0
    for root, _, files in os.walk(os.path.join(DATA, "blobs")):
        for name in files:
            try:
                size += os.stat(os.path.join(root, name)).st_size
            except FileNotFoundError:  # unlinked meanwhile
                continue
            count += 1
    return count, size


class Sent:
    """The integrity headers of every request a boto3 client sends."""

    def __init__(self, s3):
        self.requests = []
        s3.meta.events.register("before-send.s3", self.record)

    def record(self, request, event_name, **_):
        headers = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
        self.requests.append((event_name.rsplit(".", 1)[-1], request.url, headers))

    def mark(self):
        return len(self.requests)

    def since(self, mark, op):
        return [(url, h) for name, url, h in self.requests[mark:] if name == op]


def integrity(headers):
    """The headers that say what the server may know of the body, for the report."""
    keep = ("x-amz-content-sha256", "x-amz-trailer", "content-encoding", "content-md5",
            "x-amz-decoded-content-length")
    shown = {k: v for k, v in headers.items() if k in keep or k.startswith("x-amz-checksum-")}
    if HEX64.match(shown.get("x-amz-content-sha256", "")):
        shown["x-amz-content-sha256"] = "<hex " + shown["x-amz-content-sha256"][:12] + "…>"
    return shown


def sha256_declared(headers):
    """True if the request told the server the body's SHA-256 (README.md)."""
    return bool(
        HEX64.match(headers.get("x-amz-content-sha256", ""))
        or "x-amz-checksum-sha256" in headers
        or "x-amz-checksum-sha256" in headers.get("x-amz-trailer", "").lower()
    )


def main():
    c = Checks("dedup-boto3")
    s3 = client()
    sent = Sent(s3)
    print(f"boto3 {boto3.__version__}, endpoint {s3.meta.endpoint_url}, data folder {DATA}")

    last = {}

    def snapshot(what):
        try:
            st = stats()
        except Exception as e:  # noqa: BLE001
            c.check(False, f"tessera stats --json ({what})", repr(e))
            last.clear()
            return None
        print(f"  stats ({what}): " + ", ".join(f"{f}={st.get(f)}" for f in FIELDS + ("dedup_ratio",)))
        last.clear()
        last.update(st)
        return st

    def grew(what, before, after, **deltas):
        """stats AFTER minus BEFORE must be DELTAS (field -> number)."""
        if before is None or after is None:
            c.check(False, f"{what}: stats available")
            return
        for field, delta in deltas.items():
            shown = size_str(delta) if field.endswith("bytes") else str(delta)
            c.eq(f"{what}: {field} {'+' if delta >= 0 else ''}{shown}", after[field] - before[field], delta)

    def disk_matches_stats(what, st):
        """The files under DATA/blobs are the distinct blobs stats counts, once
        the copies dropped after a commit and freed blobs are unlinked (async)."""
        if st is None:
            return
        want = (st["distinct_blobs"], st["stored_bytes"])
        start, polls = time.monotonic(), 0
        files = blob_files()
        while files != want and time.monotonic() < start + 10:
            time.sleep(0.05)
            files, polls = blob_files(), polls + 1
        waited = f" (after {time.monotonic() - start:.2f} s)" if polls else ""
        c.eq(f"{what}: files under blobs/ (count, bytes) = stats' (distinct_blobs, stored_bytes){waited}",
             files, want)

    def reads_back(what, bucket, key, data):
        out = c.call(f"get_object {bucket}/{key} ({what})", s3.get_object, Bucket=bucket, Key=key)
        if out:
            body = out["Body"].read()
            c.eq(f"get_object {bucket}/{key}: MD5 of the bytes", md5(body), md5(data))
            c.eq(f"get_object {bucket}/{key}: ETag", out.get("ETag"), quoted_md5(data))

    for b in (BUCKET_A, BUCKET_B):
        c.call(f"create_bucket {b}", s3.create_bucket, Bucket=b)
    c.step("baseline")
    base = snapshot("baseline")
    disk_matches_stats("baseline", base)

    # ------------------------------------------------------------------ 1. put_object x3
    c.step("1. boto3 put_object: one 1 MiB random body under 3 keys in 2 buckets")
    one = os.urandom(MiB)
    one_sha = hashlib.sha256(one).hexdigest()
    copies = [(BUCKET_A, "one/first.bin"), (BUCKET_A, "one/second.bin"), (BUCKET_B, "one/third.bin")]
    before = snapshot("before the puts")
    for bucket, key in copies:
        mark = sent.mark()
        out = c.call(f"put_object {bucket}/{key}", s3.put_object, Bucket=bucket, Key=key, Body=one)
        if out:
            c.eq(f"put_object {bucket}/{key}: ETag is the MD5", out.get("ETag"), quoted_md5(one))
        reqs = sent.since(mark, "PutObject")
        if reqs:
            print(f"  PutObject {key} sent: {integrity(reqs[-1][1])}")
            c.eq(f"put_object {key}: x-amz-content-sha256 is the body's hex SHA-256 (botocore over http)",
                 reqs[-1][1].get("x-amz-content-sha256"), one_sha)
    after = snapshot("after 3 puts")
    grew("3 puts of one body", before, after, objects=3, logical_bytes=3 * MiB, stored_bytes=MiB, distinct_blobs=1)
    disk_matches_stats("after 3 puts", after)
    for bucket, key in copies:
        reads_back("shared body", bucket, key, one)

    c.step("1b. presigned PUT (urllib) of the same body: UNSIGNED-PAYLOAD, then a signed x-amz-checksum-sha256")
    before = after
    presigner = client(signature_version="s3v4")  # the default for us-east-1 is SigV2 query auth
    url = presigner.generate_presigned_url(
        "put_object", Params={"Bucket": BUCKET_A, "Key": "one/presigned-unsigned.bin"})
    c.check("X-Amz-Signature=" in url, "presigned URL is SigV4 (its payload: UNSIGNED-PAYLOAD)", url)
    c.call("urllib PUT presigned one/presigned-unsigned.bin (no SHA-256 declared)",
           urllib.request.urlopen, urllib.request.Request(url, data=one, method="PUT"))
    after = snapshot("after the unsigned presigned PUT")
    grew("UNSIGNED-PAYLOAD without a SHA-256 checksum is not shared (as documented)", before, after,
         objects=1, logical_bytes=MiB, stored_bytes=MiB, distinct_blobs=1)
    before = after
    sha_b64 = base64.b64encode(hashlib.sha256(one).digest()).decode()
    url = presigner.generate_presigned_url(
        "put_object", Params={"Bucket": BUCKET_A, "Key": "one/presigned-sha256.bin", "ChecksumSHA256": sha_b64})
    c.check("x-amz-checksum-sha256" in url, "presigned URL signs the x-amz-checksum-sha256 header", url)
    c.call("urllib PUT presigned one/presigned-sha256.bin with x-amz-checksum-sha256",
           urllib.request.urlopen,
           urllib.request.Request(url, data=one, method="PUT", headers={"x-amz-checksum-sha256": sha_b64}))
    after = snapshot("after the presigned PUT with x-amz-checksum-sha256")
    grew("UNSIGNED-PAYLOAD with x-amz-checksum-sha256 is shared", before, after,
         objects=1, logical_bytes=MiB, stored_bytes=0, distinct_blobs=0)
    disk_matches_stats("after the presigned PUTs", after)
    reads_back("presigned, own blob", BUCKET_A, "one/presigned-unsigned.bin", one)
    reads_back("presigned, shared", BUCKET_A, "one/presigned-sha256.bin", one)

    # ------------------------------------------------------------------ 2. upload_file multipart
    c.step("2. boto3 upload_file 20 MiB, TransferConfig 8 MiB threshold and parts (3 parts), three times")
    big_path = os.path.join(WORK, "20mib-dedup.bin")
    big = os.urandom(20 * MiB)
    with open(big_path, "wb") as f:
        f.write(big)
    chunk = 8 * MiB
    part_sizes = {n + 1: len(big[i:i + chunk]) for n, i in enumerate(range(0, len(big), chunk))}
    big_etag = multipart_etag(big, chunk)
    cfg = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=chunk, max_concurrency=3)
    uploads = [(BUCKET_A, "big/first.bin", {}), (BUCKET_B, "big/second.bin", {}),
               (BUCKET_A, "big/sha256.bin", {"ChecksumAlgorithm": "SHA256"})]
    indexed = set()  # part numbers whose content the server could index so far
    undeclared = []
    first = last.copy() if last else snapshot("before the uploads")
    total_stored = total_blobs = 0
    for bucket, key, extra in uploads:
        before = last.copy() if last else snapshot("before")
        mark = sent.mark()
        ok = c.ran(f"upload_file {bucket}/{key}{' ExtraArgs=' + str(extra) if extra else ''}",
                   s3.upload_file, big_path, bucket, key, Config=cfg, ExtraArgs=extra or None)
        parts = sent.since(mark, "UploadPart")
        c.eq(f"upload_file {key}: 3 UploadPart requests", len(parts), 3)
        new_bytes = new_blobs = 0
        for url, headers in sorted(parts, key=lambda p: int(re.search(r"partNumber=(\d+)", p[0]).group(1))):
            number = int(re.search(r"partNumber=(\d+)", url).group(1))
            known = sha256_declared(headers)
            print(f"  UploadPart {number} sent: {integrity(headers)}"
                  f" -> SHA-256 {'declared' if known else 'NOT declared'}")
            if not known:
                undeclared.append(f"{key} part {number}")
            if not (known and number in indexed):
                new_bytes += part_sizes.get(number, 0)
                new_blobs += 1
            if known:
                indexed.add(number)
        total_stored += new_bytes
        total_blobs += new_blobs
        after = snapshot(f"after upload_file {key}")
        if ok:
            head = c.call(f"head_object {bucket}/{key}", s3.head_object, Bucket=bucket, Key=key)
            if head:
                c.eq(f"head_object {key}: multipart ETag", head.get("ETag"), big_etag)
        grew(f"upload_file {key} (a part is shared when its SHA-256 and an earlier equal part's were declared)",
             before, after, objects=1, logical_bytes=20 * MiB, stored_bytes=new_bytes, distinct_blobs=new_blobs)
    if undeclared:
        print("  NOTE: botocore declared no SHA-256 for " + ", ".join(undeclared)
              + ": the server documents that such parts are not shared, and that is what was expected of them")
    else:
        print("  every UploadPart declared its SHA-256: the parts must be stored once")
    grew("the three uploads together", first, last.copy() if last else None,
         objects=3, logical_bytes=60 * MiB, stored_bytes=total_stored, distinct_blobs=total_blobs)
    disk_matches_stats("after the uploads", last.copy() if last else None)
    for bucket, key, _ in uploads[:2]:
        dst = os.path.join(WORK, "dl-" + key.replace("/", "-"))
        if c.ran(f"download_file {bucket}/{key}", s3.download_file, bucket, key, dst, Config=cfg):
            with open(dst, "rb") as f:
                c.eq(f"download_file {key}: MD5 of the bytes", md5(f.read()), md5(big))

    # ------------------------------------------------------------------ 3. aws-cli v2
    c.step(f"3. aws-cli v2 ({AWS_BIN}): aws s3 cp of one 5 MiB file to two keys")
    cli_path = os.path.join(os.environ["FILES_DIR"], "5mib.bin")
    with open(cli_path, "rb") as f:
        five = f.read()

    def aws(*args, debug=False):
        cmd = [AWS_BIN, "--endpoint-url", ENDPOINT, *args] + (["--debug"] if debug else [])
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    version = aws("--version")
    print(f"  {version.stdout.strip()}")
    c.check("aws-cli/2." in version.stdout + version.stderr, "aws --version is aws-cli v2", version.stdout)
    cli_copies = [(BUCKET_A, "cli/first.bin"), (BUCKET_B, "cli/second.bin")]
    before = snapshot("before aws s3 cp")
    for bucket, key in cli_copies:
        out = aws("s3", "cp", cli_path, f"s3://{bucket}/{key}", "--no-progress", debug=True)
        c.check(out.returncode == 0, f"aws s3 cp 5mib.bin s3://{bucket}/{key}",
                f"exit {out.returncode}\n{out.stderr[-2000:]}")
        puts = [m for m in re.findall(r"Sending http request: <AWSPreparedRequest .*?method=(\w+), url=(\S+), "
                                      r"headers=(\{.*\})>\s*$", out.stderr, re.M) if m[0] == "PUT"]
        c.eq(f"aws s3 cp {key}: one PUT (no multipart)", [u for _, u, _ in puts], [f"{ENDPOINT}/{bucket}/{key}"])
        if puts:
            headers = {k.lower(): (v.decode() if isinstance(v, bytes) else v)
                       for k, v in ast.literal_eval(puts[0][2]).items()}
            print(f"  aws s3 cp PUT {key} sent: {integrity(headers)}")
            c.eq(f"aws s3 cp {key}: x-amz-content-sha256 is the file's hex SHA-256",
                 headers.get("x-amz-content-sha256"), hashlib.sha256(five).hexdigest())
    after = snapshot("after 2 x aws s3 cp")
    grew("2 x aws s3 cp of one file", before, after, objects=2, logical_bytes=10 * MiB, stored_bytes=5 * MiB,
         distinct_blobs=1)
    disk_matches_stats("after aws s3 cp", after)
    for bucket, key in cli_copies:
        dst = os.path.join(WORK, "dl-" + key.replace("/", "-"))
        out = aws("s3", "cp", f"s3://{bucket}/{key}", dst, "--no-progress")
        if c.check(out.returncode == 0, f"aws s3 cp s3://{bucket}/{key} (download)", out.stderr[-2000:]):
            with open(dst, "rb") as f:
                c.eq(f"aws s3 cp {key} down: MD5 of the bytes", md5(f.read()), md5(five))
        head = c.call(f"head_object {bucket}/{key}", s3.head_object, Bucket=bucket, Key=key)
        if head:
            c.eq(f"head_object {key}: ETag is the MD5", head.get("ETag"), quoted_md5(five))

    # ------------------------------------------------------------------ 4. deletes
    c.step("4. delete every copy but the last (the first writer's first), then the last")
    full = snapshot("before the deletes")
    presigned = [(BUCKET_A, "one/presigned-sha256.bin"), (BUCKET_A, "one/presigned-unsigned.bin")]
    for bucket, key in copies[:2] + presigned:
        c.call(f"delete_object {bucket}/{key}", s3.delete_object, Bucket=bucket, Key=key)
    for bucket, key, _ in [uploads[0], uploads[2]]:
        c.call(f"delete_object {bucket}/{key}", s3.delete_object, Bucket=bucket, Key=key)
    bucket, key = cli_copies[0]
    out = aws("s3", "rm", f"s3://{bucket}/{key}")
    c.check(out.returncode == 0, f"aws s3 rm s3://{bucket}/{key}", out.stderr[-2000:])
    after = snapshot("one copy of each body left")
    grew("deleting all copies but one (the unsigned presigned copy had its own blob)", full, after,
         objects=-7, logical_bytes=-(4 * MiB + 40 * MiB + 5 * MiB))
    grew("one copy of each body left: exactly its bytes stored (1 + 20 + 5 MiB in 1 + 3 + 1 blobs)", base, after,
         objects=3, logical_bytes=26 * MiB, stored_bytes=26 * MiB, distinct_blobs=5)
    disk_matches_stats("one copy of each body left", after)
    last_one = copies[2]
    reads_back("the last copy", *last_one, one)
    last_big = uploads[1][:2]
    dst = os.path.join(WORK, "dl-last-big.bin")
    if c.ran(f"download_file {last_big[0]}/{last_big[1]} (the last copy)", s3.download_file, *last_big, dst,
             Config=cfg):
        with open(dst, "rb") as f:
            c.eq(f"download_file {last_big[1]}: MD5 of the bytes", md5(f.read()), md5(big))
    last_cli = cli_copies[1]
    dst = os.path.join(WORK, "dl-last-cli.bin")
    out = aws("s3", "cp", f"s3://{last_cli[0]}/{last_cli[1]}", dst, "--no-progress")
    if c.check(out.returncode == 0, f"aws s3 cp s3://{last_cli[0]}/{last_cli[1]} (the last copy)",
               out.stderr[-2000:]):
        with open(dst, "rb") as f:
            c.eq(f"aws s3 cp {last_cli[1]} down: MD5 of the bytes", md5(f.read()), md5(five))

    c.call(f"delete_object {last_one[0]}/{last_one[1]}", s3.delete_object, Bucket=last_one[0], Key=last_one[1])
    c.call(f"delete_object {last_big[0]}/{last_big[1]}", s3.delete_object, Bucket=last_big[0], Key=last_big[1])
    out = aws("s3", "rm", f"s3://{last_cli[0]}/{last_cli[1]}")
    c.check(out.returncode == 0, f"aws s3 rm s3://{last_cli[0]}/{last_cli[1]}", out.stderr[-2000:])
    after = snapshot("every copy deleted")
    if base and after:
        for field in FIELDS:
            c.eq(f"every copy deleted: {field} back to the baseline", after[field], base[field])
    disk_matches_stats("every copy deleted (blob files unlinked in the background)", after)

    c.step("4b. the same 1 MiB body again, after its blob was freed: stored anew, then shared")
    before = after
    for key in ("again/1.bin", "again/2.bin"):
        c.call(f"put_object {BUCKET_B}/{key}", s3.put_object, Bucket=BUCKET_B, Key=key, Body=one)
    after = snapshot("the body put again twice")
    grew("the body put again twice", before, after, objects=2, logical_bytes=2 * MiB, stored_bytes=MiB,
         distinct_blobs=1)
    disk_matches_stats("the body put again twice", after)
    for key in ("again/1.bin", "again/2.bin"):
        reads_back("put again", BUCKET_B, key, one)
        c.call(f"delete_object {BUCKET_B}/{key}", s3.delete_object, Bucket=BUCKET_B, Key=key)
    after = snapshot("end")
    if base and after:
        for field in FIELDS:
            c.eq(f"end: {field} back to the baseline", after[field], base[field])
    disk_matches_stats("end", after)
    for b in (BUCKET_A, BUCKET_B):
        c.call(f"delete_bucket {b}", s3.delete_bucket, Bucket=b)
    c.finish()


if __name__ == "__main__":
    main()
