"""boto3 round trip against the server at $ENDPOINT (see README.md)."""

import io
import os
import time

import boto3
from boto3.s3.transfer import TransferConfig

from compat import (
    BAD_BUCKET,
    BUCKET,
    FILES_DIR,
    HOSTILE_DIRECT,
    HOSTILE_KEYS,
    HOSTILE_PREFIXES,
    MARKER_KEY,
    ROOT_PREFIXES,
    SIZE_FILES,
    SIZE_KEYS_SORTED,
    Checks,
    byte_sorted,
    client,
    hostile_content,
    quoted_md5,
    read_file,
    sha256,
)

MiB = 1024 * 1024


def list_all(s3, api, **params):
    """Follow a paginator to the end: (keys, common prefixes, {key: size})."""
    keys, prefixes, sizes = [], [], {}
    for page in s3.get_paginator(api).paginate(Bucket=BUCKET, **params):
        for o in page.get("Contents", []):
            keys.append(o["Key"])
            sizes[o["Key"]] = o["Size"]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    return keys, prefixes, sizes


def main():
    c = Checks("boto3")
    s3 = client()
    print(f"boto3 {boto3.__version__}, endpoint {s3.meta.endpoint_url}")
    get = lambda key, **kw: s3.get_object(Bucket=BUCKET, Key=key, **kw)  # noqa: E731

    c.step("buckets: create, errors, list, location, versioning")
    c.call(f"CreateBucket {BUCKET}", s3.create_bucket, Bucket=BUCKET)
    c.call(f"HeadBucket {BUCKET}", s3.head_bucket, Bucket=BUCKET)
    c.error(f"CreateBucket {BAD_BUCKET} fails with InvalidBucketName", "InvalidBucketName",
            s3.create_bucket, Bucket=BAD_BUCKET)
    c.call(f"CreateBucket {BUCKET} again succeeds (us-east-1's answer for your own bucket, as S3)",
           s3.create_bucket, Bucket=BUCKET)
    c.error("HeadBucket of a missing bucket: 404", "404", s3.head_bucket, Bucket="no-such-bucket")
    c.error("ListObjectsV2 of a missing bucket fails with NoSuchBucket", "NoSuchBucket",
            s3.list_objects_v2, Bucket="no-such-bucket")
    out = c.call("ListBuckets", s3.list_buckets)
    if out:
        c.eq("bucket names", [b["Name"] for b in out["Buckets"]], [BUCKET])
    extra = BUCKET + "-2"
    c.call(f"CreateBucket {extra}", s3.create_bucket, Bucket=extra)
    first = c.call("ListBuckets MaxBuckets=1", s3.list_buckets, MaxBuckets=1)
    token = first.get("ContinuationToken") if first else None
    c.check(bool(token), "the first page of one bucket has a ContinuationToken")
    second = c.call("ListBuckets MaxBuckets=1 ContinuationToken", s3.list_buckets, MaxBuckets=1,
                    ContinuationToken=token or "")
    if first and second:
        c.eq("two pages of one bucket", [b["Name"] for b in first["Buckets"] + second["Buckets"]], [BUCKET, extra])
        c.eq("no token after the last page", second.get("ContinuationToken"), None)
    out = c.call("ListBuckets Prefix", s3.list_buckets, Prefix=extra)
    if out:
        c.eq("only the prefixed bucket", [b["Name"] for b in out["Buckets"]], [extra])
    c.call(f"DeleteBucket {extra}", s3.delete_bucket, Bucket=extra)
    out = c.call("GetBucketLocation", s3.get_bucket_location, Bucket=BUCKET)
    if out:
        c.eq("LocationConstraint is empty (None) for us-east-1", out.get("LocationConstraint"), None)
    out = c.call("GetBucketVersioning", s3.get_bucket_versioning, Bucket=BUCKET)
    if out:
        c.eq("versioning never enabled: no Status", out.get("Status"), None)

    c.step("PutObject: 0 B, 1 B, 5 MiB - 1, 5 MiB, 20 MiB (single PUT each, default CRC32)")
    expected = {}
    for name in SIZE_FILES:
        data = read_file(name)
        key = f"sizes/{name}"
        with open(os.path.join(FILES_DIR, name), "rb") as f:
            started = time.monotonic()
            out = c.call(f"PutObject {key} ({len(data)} B, file body: Expect: 100-continue)",
                         s3.put_object, Bucket=BUCKET, Key=key, Body=f)
            took = time.monotonic() - started
        # botocore keeps a connection's state after a zero-length PUT answered without
        # '100 Continue' and misreads the next response (boto/botocore#3755): the next
        # PUT stalls until the server closes the connection and returns no headers.
        c.check(took < 10, f"PutObject {key} answered without a stall (took {took:.1f} s, limit 10 s)")
        if out:
            c.eq(f"ETag of {key} is the quoted MD5", out.get("ETag"), quoted_md5(data))
        expected[key] = data

    c.step("PutObject with content type, metadata and an explicit CRC32")
    top = read_file("top.txt")
    c.call("PutObject top.txt with Content-Type, x-amz-meta-*, ChecksumAlgorithm=CRC32",
           s3.put_object, Bucket=BUCKET, Key="top.txt", Body=top,
           ContentType="text/plain; charset=utf-8",
           Metadata={"color": "blue", "purpose": "compat test"}, ChecksumAlgorithm="CRC32")
    expected["top.txt"] = top

    c.step("PutObject with a wrong digest must fail and leave nothing behind")
    c.error("PutObject with a wrong Content-MD5 fails with BadDigest", "BadDigest",
            s3.put_object, Bucket=BUCKET, Key="bad/md5", Body=b"hello",
            ContentMD5="Wo3TrQdWqT3tcrgjsZ3Ydw==")  # MD5 of b"hello!" instead of b"hello"
    c.error("PutObject with a wrong x-amz-checksum-crc32 fails with BadDigest", "BadDigest",
            s3.put_object, Bucket=BUCKET, Key="bad/crc32", Body=b"hello",
            ChecksumCRC32="AAAAAA==")
    c.error("the failed PUT left no object: HeadObject bad/md5 is 404", "404",
            s3.head_object, Bucket=BUCKET, Key="bad/md5")

    c.step("PutObject: hostile keys and a directory marker")
    for key in HOSTILE_KEYS:
        data = hostile_content(key)
        out = c.call(f"PutObject key [{key}]", s3.put_object, Bucket=BUCKET, Key=key, Body=data)
        if out:
            c.eq(f"ETag of [{key}]", out.get("ETag"), quoted_md5(data))
        expected[key] = data
    c.call("PutObject directory marker [dir/] (empty body)", s3.put_object,
           Bucket=BUCKET, Key=MARKER_KEY, Body=b"")
    expected[MARKER_KEY] = b""

    c.step("HeadObject: sizes, ETags, content type, metadata")
    for key, data in expected.items():
        out = c.call(f"HeadObject [{key}]", s3.head_object, Bucket=BUCKET, Key=key)
        if out:
            c.eq(f"ContentLength of [{key}]", out["ContentLength"], len(data))
            c.eq(f"ETag of [{key}]", out.get("ETag"), quoted_md5(data))
            headers = out["ResponseMetadata"]["HTTPHeaders"]
            c.eq(f"Accept-Ranges of [{key}]", headers.get("accept-ranges"), "bytes")
            c.check("last-modified" in headers, f"Last-Modified present on [{key}]", headers)
    out = c.call("HeadObject top.txt (metadata)", s3.head_object, Bucket=BUCKET, Key="top.txt")
    if out:
        c.eq("ContentType of top.txt", out.get("ContentType"), "text/plain; charset=utf-8")
        c.eq("Metadata of top.txt", out.get("Metadata"), {"color": "blue", "purpose": "compat test"})

    c.step("listings: exact keys, sizes, prefixes, delimiters, paging, v1, v2, versions")
    all_keys = byte_sorted(expected)
    cases = [
        ("all keys", {}, all_keys, []),
        ("delimiter / at the root", {"Delimiter": "/"}, ["top.txt"], ROOT_PREFIXES),
        ("prefix hostile/ delimiter /", {"Prefix": "hostile/", "Delimiter": "/"},
         HOSTILE_DIRECT, HOSTILE_PREFIXES),
        ("prefix hostile/a/ delimiter /", {"Prefix": "hostile/a/", "Delimiter": "/"},
         [], ["hostile/a//"]),
        ("prefix hostile/é/ (unicode prefix)", {"Prefix": "hostile/é/"},
         ["hostile/é/日本語.txt"], []),
        ("prefix dir/ delimiter / (the marker itself)", {"Prefix": "dir/", "Delimiter": "/"},
         ["dir/"], []),
        ("prefix sizes/", {"Prefix": "sizes/"}, SIZE_KEYS_SORTED, []),
        ("prefix nothing/ (no match)", {"Prefix": "nothing/"}, [], []),
        ("start-after hostile/with space.txt", {"StartAfter": "hostile/with space.txt"},
         [k for k in all_keys if k.encode() > "hostile/with space.txt".encode()], []),
    ]
    for api in ("list_objects_v2", "list_objects"):
        for label, params, keys, prefixes in cases:
            if api == "list_objects" and "StartAfter" in params:
                params = {"Marker": params["StartAfter"]}
            for page_size in (None, 2):
                extra = {"PaginationConfig": {"PageSize": page_size}} if page_size else {}
                name = f"{api} {label}" + (f", paged by {page_size}" if page_size else "")
                got = c.call(name, list_all, s3, api, **params, **extra)
                if got:
                    c.eq(f"{name}: keys", got[0], keys)
                    c.eq(f"{name}: common prefixes", got[1], prefixes)
                    if not params:
                        c.eq(f"{name}: sizes", got[2], {k: len(v) for k, v in expected.items()})
    raw = c.call("ListObjectsV2 without encoding-type (raw XML keys)", s3.list_objects_v2,
                 Bucket=BUCKET, Prefix="hostile/")
    if raw:
        c.eq("raw listing keys", [o["Key"] for o in raw.get("Contents", [])],
             byte_sorted(k for k in expected if k.startswith("hostile/")))
    out = c.call("ListObjectsV2 MaxKeys=3", s3.list_objects_v2, Bucket=BUCKET, MaxKeys=3)
    if out:
        c.eq("MaxKeys=3: KeyCount", out.get("KeyCount"), 3)
        c.eq("MaxKeys=3: IsTruncated", out.get("IsTruncated"), True)
        c.eq("MaxKeys=3: keys", [o["Key"] for o in out.get("Contents", [])], all_keys[:3])
    versions = c.call("ListObjectVersions (unversioned bucket)", s3.list_object_versions,
                      Bucket=BUCKET)
    if versions:
        vs = versions.get("Versions", [])
        c.eq("ListObjectVersions: keys", [v["Key"] for v in vs], all_keys)
        c.eq("ListObjectVersions: every VersionId is 'null'", {v.get("VersionId") for v in vs}, {"null"})
        c.eq("ListObjectVersions: every IsLatest", {v.get("IsLatest") for v in vs}, {True})
        c.eq("ListObjectVersions: no delete markers", versions.get("DeleteMarkers", []), [])
    versions = c.call("ListObjectVersions prefix hostile/ delimiter /", s3.list_object_versions,
                      Bucket=BUCKET, Prefix="hostile/", Delimiter="/")
    if versions:
        c.eq("versions prefix hostile/: keys", [v["Key"] for v in versions.get("Versions", [])],
             HOSTILE_DIRECT)
        c.eq("versions prefix hostile/: common prefixes",
             [p["Prefix"] for p in versions.get("CommonPrefixes", [])], HOSTILE_PREFIXES)

    c.step("GetObject: every object, SHA-256 compared with the source")
    for key, data in expected.items():
        out = c.call(f"GetObject [{key}]", get, key)
        if out:
            body = out["Body"].read()
            c.eq(f"[{key}] sha256 ({len(data)} B)", sha256(body), sha256(data))
    out = c.call("GetObject top.txt (headers)", get, "top.txt")
    if out:
        c.eq("GET Content-Type", out.get("ContentType"), "text/plain; charset=utf-8")
        c.eq("GET Metadata", out.get("Metadata"), {"color": "blue", "purpose": "compat test"})
        c.eq("GET ETag", out.get("ETag"), quoted_md5(top))

    c.step("GetObject with Range")
    big = expected["sizes/20mib.bin"]
    total = len(big)
    for rng, first, last in [
        ("bytes=1048576-2097151", 1048576, 2097151),
        ("bytes=0-0", 0, 0),
        ("bytes=-100", total - 100, total - 1),
        ("bytes=20971000-", 20971000, total - 1),
        ("bytes=20971000-99999999", 20971000, total - 1),
    ]:
        out = c.call(f"GetObject sizes/20mib.bin Range {rng}", get, "sizes/20mib.bin", Range=rng)
        if out:
            body = out["Body"].read()
            c.eq(f"{rng}: HTTP status", out["ResponseMetadata"]["HTTPStatusCode"], 206)
            c.eq(f"{rng}: bytes", sha256(body), sha256(big[first:last + 1]))
            c.eq(f"{rng}: Content-Range", out.get("ContentRange"), f"bytes {first}-{last}/{total}")
            c.eq(f"{rng}: Content-Length", out.get("ContentLength"), last - first + 1)
    c.error("Range bytes=0-0 on the empty object fails with InvalidRange", "InvalidRange",
            get, "sizes/empty.bin", Range="bytes=0-0")
    c.error("Range beyond the end fails with InvalidRange", "InvalidRange",
            get, "sizes/one.bin", Range="bytes=5-10")
    out = c.call("GetObject partNumber=1 of the empty object (transfer-manager probe)", get,
                 "sizes/empty.bin", PartNumber=1)
    if out:
        c.eq("partNumber=1 on a non-multipart object: whole body", out["Body"].read(), b"")

    c.step("transfer manager: upload_file (no multipart) and download_file (ranged GETs)")
    no_multipart = TransferConfig(multipart_threshold=64 * MiB, multipart_chunksize=64 * MiB)
    src = os.path.join(FILES_DIR, "20mib.bin")
    c.call("upload_file 20 MiB with multipart_threshold=64MiB", s3.upload_file, src, BUCKET,
           "transfer/20mib.bin", Config=no_multipart)
    dst = os.path.join(os.environ.get("WORK", "/tmp"), "download.bin")
    ranged = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB,
                            max_concurrency=3)
    if c.ran("download_file 20 MiB in 8 MiB ranged GETs", s3.download_file, BUCKET,
             "transfer/20mib.bin", dst, Config=ranged):
        with open(dst, "rb") as f:
            c.eq("download_file sha256", sha256(f.read()), sha256(big))
    buf = io.BytesIO()
    if c.ran("download_fileobj 5 MiB", s3.download_fileobj, BUCKET, "sizes/5mib.bin", buf,
             Config=ranged):
        c.eq("download_fileobj sha256", sha256(buf.getvalue()), sha256(expected["sizes/5mib.bin"]))
    c.call("DeleteObject transfer/20mib.bin", s3.delete_object, Bucket=BUCKET, Key="transfer/20mib.bin")

    c.step("CopyObject: bytes, ETag, metadata (COPY and REPLACE), hostile source key")
    out = c.call("CopyObject sizes/5mib.bin -> copies/5mib.bin", s3.copy_object, Bucket=BUCKET,
                 Key="copies/5mib.bin", CopySource={"Bucket": BUCKET, "Key": "sizes/5mib.bin"})
    if out:
        c.eq("copy result ETag", out["CopyObjectResult"].get("ETag"),
             quoted_md5(expected["sizes/5mib.bin"]))
    out = c.call("GetObject copies/5mib.bin", get, "copies/5mib.bin")
    if out:
        c.eq("copy has the source's bytes", sha256(out["Body"].read()),
             sha256(expected["sizes/5mib.bin"]))
    c.call("CopyObject top.txt -> copies/top.txt (metadata directive COPY)", s3.copy_object,
           Bucket=BUCKET, Key="copies/top.txt", CopySource=f"{BUCKET}/top.txt")
    out = c.call("HeadObject copies/top.txt", s3.head_object, Bucket=BUCKET, Key="copies/top.txt")
    if out:
        c.eq("copied ContentType", out.get("ContentType"), "text/plain; charset=utf-8")
        c.eq("copied Metadata", out.get("Metadata"), {"color": "blue", "purpose": "compat test"})
    c.call("CopyObject top.txt -> copies/top-replaced.txt (metadata directive REPLACE)",
           s3.copy_object, Bucket=BUCKET, Key="copies/top-replaced.txt",
           CopySource={"Bucket": BUCKET, "Key": "top.txt"}, MetadataDirective="REPLACE",
           ContentType="application/x-tessera-test", Metadata={"color": "green"})
    out = c.call("HeadObject copies/top-replaced.txt", s3.head_object, Bucket=BUCKET,
                 Key="copies/top-replaced.txt")
    if out:
        c.eq("replaced ContentType", out.get("ContentType"), "application/x-tessera-test")
        c.eq("replaced Metadata", out.get("Metadata"), {"color": "green"})
        c.eq("replaced copy ContentLength", out.get("ContentLength"), len(top))
    src_key, dst_key = "hostile/é/日本語.txt", "copies/é 日本 + copy.txt"
    c.call(f"CopyObject [{src_key}] -> [{dst_key}]", s3.copy_object, Bucket=BUCKET, Key=dst_key,
           CopySource={"Bucket": BUCKET, "Key": src_key})
    out = c.call(f"GetObject [{dst_key}]", get, dst_key)
    if out:
        c.eq("hostile copy has the source's bytes", out["Body"].read(), hostile_content(src_key))
    c.error("CopyObject from a missing key fails with NoSuchKey", "NoSuchKey", s3.copy_object,
            Bucket=BUCKET, Key="copies/none", CopySource={"Bucket": BUCKET, "Key": "no/such/key"})

    c.step("delete: bucket not empty, single, missing key, batch, bucket")
    c.error("DeleteBucket of a non-empty bucket fails with BucketNotEmpty", "BucketNotEmpty",
            s3.delete_bucket, Bucket=BUCKET)
    top = c.call("HeadObject top.txt", s3.head_object, Bucket=BUCKET, Key="top.txt")
    top_etag, top_size = (top["ETag"], top["ContentLength"]) if top else ("missing", 0)
    c.error("DeleteObject IfMatch=<another ETag> fails with PreconditionFailed", "PreconditionFailed",
            s3.delete_object, Bucket=BUCKET, Key="top.txt", IfMatch='"0123456789abcdef0123456789abcdef"')
    c.error("DeleteObject IfMatchSize=<another size> fails with PreconditionFailed", "PreconditionFailed",
            s3.delete_object, Bucket=BUCKET, Key="top.txt", IfMatchSize=top_size + 1)
    c.call("HeadObject top.txt: still there after the refused deletes", s3.head_object, Bucket=BUCKET,
           Key="top.txt")
    c.call("DeleteObject top.txt IfMatch=<its ETag> IfMatchSize=<its size>", s3.delete_object, Bucket=BUCKET,
           Key="top.txt", IfMatch=top_etag, IfMatchSize=top_size)
    c.error("HeadObject top.txt after delete: 404", "404", s3.head_object, Bucket=BUCKET, Key="top.txt")
    c.error("GetObject top.txt after delete fails with NoSuchKey", "NoSuchKey", get, "top.txt")
    c.call("DeleteObject of a missing key succeeds", s3.delete_object, Bucket=BUCKET, Key="no/such/key")
    put = c.call("PutObject cond/a", s3.put_object, Bucket=BUCKET, Key="cond/a", Body=b"a")
    cond_etag = put["ETag"] if put else "missing"
    out = c.call("DeleteObjects cond/a with another ETag", s3.delete_objects, Bucket=BUCKET,
                 Delete={"Objects": [{"Key": "cond/a", "ETag": '"0123456789abcdef0123456789abcdef"'}]})
    if out:
        c.eq("DeleteObjects: a per-key PreconditionFailed, nothing deleted",
             ([e["Code"] for e in out.get("Errors", [])], out.get("Deleted", [])), (["PreconditionFailed"], []))
    out = c.call("DeleteObjects cond/a with its ETag and Size", s3.delete_objects, Bucket=BUCKET,
                 Delete={"Objects": [{"Key": "cond/a", "ETag": cond_etag, "Size": 1}]})
    if out:
        c.eq("DeleteObjects: cond/a deleted", [d["Key"] for d in out.get("Deleted", [])], ["cond/a"])
    remaining = byte_sorted([k for k in expected if k != "top.txt"]
                            + ["copies/5mib.bin", "copies/top.txt", "copies/top-replaced.txt", dst_key])
    out = c.call(f"DeleteObjects of the {len(remaining)} remaining keys (+1 missing key)",
                 s3.delete_objects, Bucket=BUCKET,
                 Delete={"Objects": [{"Key": k} for k in remaining + ["no/such/key"]]})
    if out:
        c.eq("DeleteObjects: every key reported Deleted",
             byte_sorted(d["Key"] for d in out.get("Deleted", [])),
             byte_sorted(remaining + ["no/such/key"]))
        c.eq("DeleteObjects: no Errors", out.get("Errors", []), [])
    got = c.call("ListObjectsV2 after deleting everything", list_all, s3, "list_objects_v2")
    if got:
        c.eq("no key left", got[0], [])
    c.call(f"DeleteBucket {BUCKET}", s3.delete_bucket, Bucket=BUCKET)
    c.error("HeadBucket after delete: 404", "404", s3.head_bucket, Bucket=BUCKET)
    c.error("DeleteBucket again fails with NoSuchBucket", "NoSuchBucket", s3.delete_bucket,
            Bucket=BUCKET)
    c.finish()


if __name__ == "__main__":
    main()
