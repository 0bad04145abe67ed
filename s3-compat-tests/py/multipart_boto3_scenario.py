"""boto3 multipart: the transfer manager (upload_file, download_file, managed copy)
and the low-level calls, with S3's Complete errors (see README.md)."""

import hashlib
import os
import threading
import time

import boto3
from boto3.s3.transfer import TransferConfig

from compat import (
    BUCKET,
    Checks,
    client,
    composite_crc32,
    crc32_b64,
    multipart_etag,
    quoted_md5,
    sha256,
)

MiB = 1024 * 1024
WORK = os.environ["WORK"]


class CallCounter:
    """Counts the requests of one operation, and the most ever in flight at once."""

    def __init__(self, s3, op):
        self.calls, self.inflight, self.max_inflight, self.params = 0, 0, 0, []
        self.lock = threading.Lock()
        s3.meta.events.register(f"before-call.s3.{op}", self.before)
        s3.meta.events.register(f"after-call.s3.{op}", self.after)

    def before(self, params, **_):
        with self.lock:
            self.calls += 1
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            self.params.append(params)

    def after(self, **_):
        with self.lock:
            self.inflight -= 1


def main():
    c = Checks("multipart-boto3")
    s3 = client()
    print(f"boto3 {boto3.__version__}, endpoint {s3.meta.endpoint_url}")
    c.call(f"CreateBucket {BUCKET}", s3.create_bucket, Bucket=BUCKET)

    c.step("upload_file 40 MiB: TransferConfig 5 MiB parts, 4 threads (default CRC32, COMPOSITE)")
    src = os.path.join(WORK, "40mib.bin")
    with open(src, "wb") as f:
        f.write(os.urandom(40 * MiB))
    with open(src, "rb") as f:
        data = f.read()
    key = "transfer/40mib.bin"
    parts = CallCounter(s3, "UploadPart")
    creates = CallCounter(s3, "CreateMultipartUpload")
    up_cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB,
                            max_concurrency=4, use_threads=True)
    c.call(f"upload_file {key}", s3.upload_file, src, BUCKET, key, Config=up_cfg)
    c.eq("one CreateMultipartUpload", creates.calls, 1)
    if creates.params:
        c.eq("CreateMultipartUpload asked for ChecksumAlgorithm CRC32 (boto3 default)",
             creates.params[0].get("headers", {}).get("x-amz-checksum-algorithm"), "CRC32")
    c.eq("8 UploadPart requests", parts.calls, 8)
    print(f"  most UploadPart requests in flight at once: {parts.max_inflight}")
    out = c.call(f"HeadObject {key}", s3.head_object, Bucket=BUCKET, Key=key)
    if out:
        c.eq("ContentLength", out.get("ContentLength"), len(data))
        c.eq("ETag is md5(part MD5s)-8, computed locally", out.get("ETag"), multipart_etag(data, 5 * MiB))
    out = c.call(f"HeadObject {key} ChecksumMode=ENABLED", s3.head_object, Bucket=BUCKET, Key=key,
                 ChecksumMode="ENABLED")
    if out:
        c.check(bool(out.get("ChecksumCRC32")), "a CRC32 checksum is returned",
                {k: v for k, v in out.items() if k.startswith("Checksum")})
        c.eq("ChecksumType", out.get("ChecksumType"), "COMPOSITE")
        c.eq("ChecksumCRC32 = CRC32 of the part CRC32s, -8", out.get("ChecksumCRC32"),
             composite_crc32(data, 5 * MiB))
    out = c.call(f"GetObject {key} (whole, ChecksumMode=ENABLED)", s3.get_object, Bucket=BUCKET,
                 Key=key, ChecksumMode="ENABLED")
    if out:
        c.eq("GetObject sha256", sha256(out["Body"].read()), sha256(data))

    out = c.call(f"GetObjectAttributes {key}", s3.get_object_attributes, Bucket=BUCKET, Key=key,
                 ObjectAttributes=["ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize"], MaxParts=5)
    if out:
        c.eq("attributes: ETag without quotes", out.get("ETag"), multipart_etag(data, 5 * MiB).strip('"'))
        c.eq("attributes: ObjectSize", out.get("ObjectSize"), len(data))
        c.eq("attributes: StorageClass", out.get("StorageClass"), "STANDARD")
        c.eq("attributes: composite CRC32 without -N", out.get("Checksum", {}).get("ChecksumCRC32"),
             composite_crc32(data, 5 * MiB).rsplit("-", 1)[0])
        parts = out.get("ObjectParts", {})
        c.eq("attributes: 8 parts, the first 5 listed, truncated",
             (parts.get("TotalPartsCount"), [p["PartNumber"] for p in parts.get("Parts", [])],
              parts.get("IsTruncated")), (8, [1, 2, 3, 4, 5], True))

    c.step("GetObject / HeadObject with PartNumber")
    for number in (1, 3, 8):
        out = c.call(f"GetObject PartNumber={number}", s3.get_object, Bucket=BUCKET, Key=key,
                     PartNumber=number)
        if out:
            first = (number - 1) * 5 * MiB
            want = data[first:first + 5 * MiB]
            c.eq(f"part {number}: HTTP status", out["ResponseMetadata"]["HTTPStatusCode"], 206)
            c.eq(f"part {number}: PartsCount", out.get("PartsCount"), 8)
            c.eq(f"part {number}: Content-Range", out.get("ContentRange"),
                 f"bytes {first}-{first + len(want) - 1}/{len(data)}")
            c.eq(f"part {number}: bytes", sha256(out["Body"].read()), sha256(want))
    out = c.call("HeadObject PartNumber=2", s3.head_object, Bucket=BUCKET, Key=key, PartNumber=2)
    if out:
        c.eq("HEAD part 2: ContentLength", out.get("ContentLength"), 5 * MiB)
        c.eq("HEAD part 2: PartsCount", out.get("PartsCount"), 8)
    c.error("GetObject PartNumber=9 (past the last part) fails with InvalidPartNumber",
            "InvalidPartNumber", s3.get_object, Bucket=BUCKET, Key=key, PartNumber=9)

    c.step("download_file: concurrent ranged GETs (4 MiB chunks, 4 threads)")
    gets = CallCounter(s3, "GetObject")
    dst = os.path.join(WORK, "download.bin")
    down_cfg = TransferConfig(multipart_threshold=1 * MiB, multipart_chunksize=4 * MiB,
                              max_concurrency=4)
    if c.ran(f"download_file {key}", s3.download_file, BUCKET, key, dst, Config=down_cfg):
        with open(dst, "rb") as f:
            c.eq("download_file sha256", sha256(f.read()), sha256(data))
    ranges = [p.get("headers", {}).get("Range", "") for p in gets.params]
    c.eq("10 GetObject requests, each with a Range", (gets.calls, all(r.startswith("bytes=") for r in ranges)),
         (10, True))
    print(f"  most GetObject requests in flight at once: {gets.max_inflight}")

    c.step("managed copy (s3.copy): UploadPartCopy with CopySourceRange, 8 MiB parts")
    copies = CallCounter(s3, "UploadPartCopy")
    copy_cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=8 * MiB, max_concurrency=4)
    c.call("copy transfer/40mib.bin -> copies/40mib.bin", s3.copy,
           {"Bucket": BUCKET, "Key": key}, BUCKET, "copies/40mib.bin", Config=copy_cfg)
    c.eq("5 UploadPartCopy requests", copies.calls, 5)
    out = c.call("HeadObject copies/40mib.bin", s3.head_object, Bucket=BUCKET, Key="copies/40mib.bin")
    if out:
        c.eq("copy ETag is md5(part MD5s)-5 with 8 MiB parts", out.get("ETag"), multipart_etag(data, 8 * MiB))
    out = c.call("GetObject copies/40mib.bin", s3.get_object, Bucket=BUCKET, Key="copies/40mib.bin")
    if out:
        c.eq("copy sha256", sha256(out["Body"].read()), sha256(data))

    c.step("low level: Complete errors (EntityTooSmall, InvalidPartOrder, InvalidPart), gaps, unquoted ETags")
    lkey = "lowlevel/errors.bin"
    mpu = c.call("CreateMultipartUpload", s3.create_multipart_upload, Bucket=BUCKET, Key=lkey)
    uid = mpu["UploadId"] if mpu else "missing"
    small = os.urandom(1 * MiB)
    big = data[:5 * MiB]
    etags = {}
    for number, body in ((1, small), (2, small), (3, big), (5, small)):
        out = c.call(f"UploadPart {number} ({len(body)} B)", s3.upload_part, Bucket=BUCKET, Key=lkey,
                     UploadId=uid, PartNumber=number, Body=body)
        if out:
            c.eq(f"part {number} ETag", out.get("ETag"), quoted_md5(body))
            c.eq(f"part {number} ChecksumCRC32 echoed", out.get("ChecksumCRC32"), crc32_b64(body))
            etags[number] = out.get("ETag")

    def complete(numbers, etag_of=lambda n: etags.get(n, '"00000000000000000000000000000000"')):
        return s3.complete_multipart_upload(
            Bucket=BUCKET, Key=lkey, UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etag_of(n)} for n in numbers]})

    c.error("Complete [1, 3]: part 1 is 1 MiB and not last -> EntityTooSmall", "EntityTooSmall",
            complete, [1, 3])
    c.error("Complete [3, 1] -> InvalidPartOrder", "InvalidPartOrder", complete, [3, 1])
    c.error("Complete [3, 4]: part 4 was never uploaded -> InvalidPart", "InvalidPart", complete, [3, 4])
    c.error("Complete [3, 5] with a wrong ETag for part 5 -> InvalidPart", "InvalidPart", complete, [3, 5],
            lambda n: etags[n] if n == 3 else quoted_md5(b"not the part"))
    out = c.call("ListParts after the failed Completes", s3.list_parts, Bucket=BUCKET, Key=lkey, UploadId=uid)
    if out:
        c.eq("every part is still there", [(p["PartNumber"], p["Size"]) for p in out.get("Parts", [])],
             [(1, MiB), (2, MiB), (3, 5 * MiB), (5, MiB)])
    out = c.call("Complete [3, 5] (a gap; ETags without quotes)", complete, [3, 5],
                 lambda n: etags[n].strip('"'))
    if out:
        c.eq("ETag of parts 3 + 5", out.get("ETag"),
             f'"{hashlib.md5(hashlib.md5(big).digest() + hashlib.md5(small).digest()).hexdigest()}-2"')
    out = c.call(f"GetObject {lkey}", s3.get_object, Bucket=BUCKET, Key=lkey)
    if out:
        c.eq("object = part 3 + part 5 (parts 1 and 2 dropped)", sha256(out["Body"].read()), sha256(big + small))

    c.step("low level: FULL_OBJECT CRC32 claimed on Complete (the object's checksum, not the XML's)")
    fkey = "lowlevel/full-object.bin"
    mpu = c.call("CreateMultipartUpload CRC32 FULL_OBJECT", s3.create_multipart_upload, Bucket=BUCKET, Key=fkey,
                 ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")
    fid = mpu["UploadId"] if mpu else "missing"
    fparts = []
    for number, body in ((1, big), (2, small)):
        out = c.call(f"UploadPart {number} ChecksumAlgorithm=CRC32", s3.upload_part, Bucket=BUCKET, Key=fkey,
                     UploadId=fid, PartNumber=number, Body=body, ChecksumAlgorithm="CRC32")
        if out:
            fparts.append({"PartNumber": number, "ETag": out["ETag"], "ChecksumCRC32": out.get("ChecksumCRC32")})
    whole_crc = crc32_b64(big + small)

    def complete_full(value):
        return s3.complete_multipart_upload(Bucket=BUCKET, Key=fkey, UploadId=fid, ChecksumCRC32=value,
                                            ChecksumType="FULL_OBJECT", MultipartUpload={"Parts": fparts})

    c.error("Complete with a wrong full-object CRC32 -> BadDigest", "BadDigest", complete_full,
            crc32_b64(b"not the object"))
    out = c.call("Complete with the object's full-object CRC32", complete_full, whole_crc)
    if out:
        c.eq("Complete ChecksumCRC32", out.get("ChecksumCRC32"), whole_crc)
        c.eq("Complete ChecksumType", out.get("ChecksumType"), "FULL_OBJECT")
    again = c.call("the same Complete again (a retry after a lost response)", complete_full, whole_crc)
    if out and again:
        c.eq("the repeat answers the same ETag", again.get("ETag"), out.get("ETag"))
    out = c.call(f"HeadObject {fkey} ChecksumMode=ENABLED", s3.head_object, Bucket=BUCKET, Key=fkey,
                 ChecksumMode="ENABLED")
    if out:
        c.eq("HEAD ChecksumCRC32 = CRC32 of all the bytes", out.get("ChecksumCRC32"), whole_crc)
        c.eq("HEAD ChecksumType", out.get("ChecksumType"), "FULL_OBJECT")

    c.step("ListMultipartUploads: paged by 1 (key-marker + upload-id-marker), prefix, abort")
    ids = []
    for k in ("pending/a.bin", "pending/b.bin", "pending/b.bin", "other/c.bin"):
        out = c.call(f"CreateMultipartUpload {k}", s3.create_multipart_upload, Bucket=BUCKET, Key=k)
        if out:
            ids.append((k, out["UploadId"]))
        time.sleep(0.01)  # distinct initiation times: same-key uploads list in that order
    listed = []
    pages = 0
    try:
        for page in s3.get_paginator("list_multipart_uploads").paginate(
                Bucket=BUCKET, Prefix="pending/", PaginationConfig={"PageSize": 1}):
            pages += 1
            listed += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]
        c.check(True, "ListMultipartUploads Prefix=pending/ paged by 1")
    except Exception as e:  # noqa: BLE001
        c.check(False, "ListMultipartUploads Prefix=pending/ paged by 1", repr(e))
    pending = [u for u in ids if u[0].startswith("pending/")]
    c.eq("every pending/ upload once, ordered by key, then by initiation",
         listed, sorted(pending, key=lambda u: (u[0].encode(), ids.index(u))))
    c.check(pages >= 3, f"answered in several pages ({pages})")
    out = c.call("ListMultipartUploads Delimiter=/", s3.list_multipart_uploads, Bucket=BUCKET, Delimiter="/")
    if out:
        c.eq("common prefixes", [p["Prefix"] for p in out.get("CommonPrefixes", [])], ["other/", "pending/"])
    for k, i in ids:
        c.call(f"AbortMultipartUpload {k}", s3.abort_multipart_upload, Bucket=BUCKET, Key=k, UploadId=i)
    out = c.call("ListMultipartUploads after the aborts", s3.list_multipart_uploads, Bucket=BUCKET)
    if out:
        c.eq("no upload left", out.get("Uploads", []), [])
    if ids:
        c.error("ListParts of an aborted upload fails with NoSuchUpload", "NoSuchUpload", s3.list_parts,
                Bucket=BUCKET, Key=ids[0][0], UploadId=ids[0][1])
        c.error("UploadPart to an aborted upload fails with NoSuchUpload", "NoSuchUpload", s3.upload_part,
                Bucket=BUCKET, Key=ids[0][0], UploadId=ids[0][1], PartNumber=1, Body=b"x")

    c.step("cleanup")
    for k in (key, "copies/40mib.bin", lkey, fkey):
        c.call(f"DeleteObject {k}", s3.delete_object, Bucket=BUCKET, Key=k)
    c.call(f"DeleteBucket {BUCKET}", s3.delete_bucket, Bucket=BUCKET)
    c.finish()


if __name__ == "__main__":
    main()
