"""boto3 bucket versioning against the server at $ENDPOINT (see README.md).

Version ids are opaque strings: the checks compare them with the ids the server
returned earlier, never with a format, except the literal "null". Every payload is
random, so a version answered with another version's bytes shows in the SHA-256.
"""

import os
import urllib.parse
import xml.etree.ElementTree as ET

import boto3
from botocore.exceptions import ClientError

from compat import BUCKET, Checks, client, error_code, multipart_etag, quoted_md5, sha256

MiB = 1024 * 1024

# Keys in byte order: ListObjectVersions must answer them in this order.
ALPHA = "alpha.txt"
DOC = "doc.txt"
BIG = "multipart.bin"
RESTORED = "restored.bin"
SUSP = "suspended.txt"
ZETA = "zeta.bin"

VERSION, MARKER = "Version", "DeleteMarker"


def is_real_id(vid):
    """A version id minted by the server: a non-empty string other than 'null'."""
    return isinstance(vid, str) and vid != "" and vid != "null"


class RawListing:
    """Keeps the raw XML body of the last ListObjectVersions answer. boto3 parses
    <Version> and <DeleteMarker> into two separate lists and so loses their order;
    the order (newest first within a key) is only in the XML."""

    def __init__(self, s3):
        self.body = None
        s3.meta.events.register("before-parse.s3.ListObjectVersions", self._grab)

    def _grab(self, response_dict, **_):
        self.body = response_dict.get("body")

    def entries(self):
        """[(kind, key, version id, is latest)] in the order of the XML."""
        root = ET.fromstring(self.body)
        local = lambda el: el.tag.rsplit("}", 1)[-1]  # noqa: E731
        url = any(local(el) == "EncodingType" and (el.text or "") == "url" for el in root)
        out = []
        for el in root:
            kind = local(el)
            if kind not in (VERSION, MARKER):
                continue
            fields = {local(f): f.text or "" for f in el}
            key = urllib.parse.unquote_plus(fields.get("Key", "")) if url else fields.get("Key", "")
            out.append((kind, key, fields.get("VersionId"), fields.get("IsLatest") == "true"))
        return out


def show(entries):
    return "\n".join(f"  {e}" for e in entries) or "  (nothing)"


def main():
    c = Checks("versioning-boto3")
    s3 = client()
    print(f"boto3 {boto3.__version__}, endpoint {s3.meta.endpoint_url}")
    raw = RawListing(s3)
    seen_ids = set()  # every real version id the server has given out so far

    def fresh_id(what, vid):
        """VID must be a new real version id (not 'null', never given out before)."""
        ok = c.check(is_real_id(vid) and vid not in seen_ids, f"{what}: a new VersionId",
                     f"VersionId: {vid!r}; ids given out before: {sorted(seen_ids)}")
        if is_real_id(vid):
            seen_ids.add(vid)
        return vid if ok else (vid if is_real_id(vid) else f"missing-{what}")

    def put(what, key, data):
        out = c.call(f"PutObject {key}: {what} ({len(data)} B)", s3.put_object, Bucket=BUCKET,
                     Key=key, Body=data)
        if out:
            c.eq(f"{what}: ETag is the quoted MD5", out.get("ETag"), quoted_md5(data))
        return out or {}

    def get_bytes(what, key, data, version_id=None, expect_id=None):
        """GetObject (of VERSION_ID if given) must answer DATA and VersionId EXPECT_ID."""
        kw = {"VersionId": version_id} if version_id is not None else {}
        out = c.call(f"GetObject {key} {what}", s3.get_object, Bucket=BUCKET, Key=key, **kw)
        if out:
            body = out["Body"].read()
            c.eq(f"GetObject {key} {what}: sha256 of the {len(data)} B expected", sha256(body), sha256(data))
            if expect_id is not None:
                c.eq(f"GetObject {key} {what}: VersionId", out.get("VersionId"), expect_id)
        return out

    def fails(what, code, status, fn, **kw):
        """The request must fail with S3 error CODE (None: any) and HTTP STATUS.
        Returns the response headers (lower-case names), or None."""
        try:
            result = fn(**kw)
        except ClientError as e:
            meta = e.response.get("ResponseMetadata", {})
            got = (error_code(e) if code is not None else None, meta.get("HTTPStatusCode"))
            c.check(got == (code, status), what,
                    f"expected: {status} {code or '(any code)'}\nactual:   {meta.get('HTTPStatusCode')} "
                    f"{error_code(e)}\nerror {e.response.get('Error')}")
            return meta.get("HTTPHeaders", {})
        except Exception as e:  # noqa: BLE001 - any other failure is a failed check
            c.check(False, what, f"expected {status} {code or '(any code)'}, got {e!r}")
            return None
        if "Body" in result:
            result["Body"].close()
        c.check(False, what, f"expected {status} {code or '(any code)'}, got success: {result!r}")
        return None

    def delete_marker_header(what, headers):
        if headers is not None:
            c.eq(f"{what}: header x-amz-delete-marker", headers.get("x-amz-delete-marker"), "true")

    def listing(what, **params):
        """One unpaged ListObjectVersions: (parsed answer, ordered entries), or (None, None)."""
        out = c.call(f"ListObjectVersions {what}", s3.list_object_versions, Bucket=BUCKET, **params)
        if not out:
            return None, None
        c.eq(f"ListObjectVersions {what}: IsTruncated", out.get("IsTruncated"), False)
        try:
            return out, raw.entries()
        except ET.ParseError as e:
            c.check(False, f"ListObjectVersions {what}: the XML parses", f"{e}\n{raw.body[:2000]!r}")
            return None, None

    def expect_listing(what, expected, **params):
        out, entries = listing(what, **params)
        if entries is not None:
            c.check(entries == expected, f"ListObjectVersions {what}: exactly these entries, in order",
                    f"expected:\n{show(expected)}\nactual:\n{show(entries)}")
        return out, entries

    def paged(max_keys):
        """Every entry through pages of MAX_KEYS, following NextKeyMarker/NextVersionIdMarker."""
        entries, params = [], {}
        for page in range(1, 101):
            out = s3.list_object_versions(Bucket=BUCKET, MaxKeys=max_keys, **params)
            got = raw.entries()
            if len(got) > max_keys:
                raise AssertionError(f"page {page} has {len(got)} entries, MaxKeys={max_keys}:\n{show(got)}")
            entries += got
            if not out.get("IsTruncated"):
                return entries
            nk, nv = out.get("NextKeyMarker"), out.get("NextVersionIdMarker")
            if not nk or not nv:
                raise AssertionError(f"page {page} IsTruncated but NextKeyMarker={nk!r} "
                                     f"NextVersionIdMarker={nv!r}")
            params = {"KeyMarker": nk, "VersionIdMarker": nv}
        raise AssertionError("still truncated after 100 pages")

    def versioning(what, status):
        out = c.call(f"GetBucketVersioning {what}", s3.get_bucket_versioning, Bucket=BUCKET)
        if out:
            c.eq(f"GetBucketVersioning {what}: Status", out.get("Status"), status)
            c.check(out.get("MFADelete") in (None, "Disabled"),
                    f"GetBucketVersioning {what}: MFADelete not Enabled", f"MFADelete: {out.get('MFADelete')!r}")

    def set_versioning(status):
        return c.call(f"PutBucketVersioning Status={status}", s3.put_bucket_versioning, Bucket=BUCKET,
                      VersioningConfiguration={"Status": status})

    # ------------------------------------------------------------------ before versioning
    c.step("a fresh bucket: no versioning Status; a PUT before versioning is the 'null' version")
    c.call(f"CreateBucket {BUCKET}", s3.create_bucket, Bucket=BUCKET)
    versioning("on a fresh bucket", None)
    d0 = os.urandom(1500)
    out = put("D0, before versioning", DOC, d0)
    c.check(out.get("VersionId") in (None, "null"),
            "PutObject on a never-versioned bucket gives no real VersionId (absent or 'null')",
            f"VersionId: {out.get('VersionId')!r}")
    expect_listing("before versioning", [(VERSION, DOC, "null", True)])

    # ------------------------------------------------------------------ enable, new versions
    c.step("PutBucketVersioning Enabled; two more PUTs of the key make two new versions")
    set_versioning("Enabled")
    versioning("after Enabled", "Enabled")
    d1, d2 = os.urandom(2 * 1024 + 1), os.urandom(MiB + 7)
    v1 = fresh_id("PutObject D1", put("D1, versioned", DOC, d1).get("VersionId"))
    v2 = fresh_id("PutObject D2", put("D2, versioned", DOC, d2).get("VersionId"))
    c.check(v1 != v2, "the two PutObject responses have distinct VersionIds", f"{v1!r} and {v2!r}")

    c.step("GetObject / HeadObject by VersionId: each version's own bytes")
    get_bytes("VersionId=<D1>", DOC, d1, v1, v1)
    get_bytes("VersionId=<D2>", DOC, d2, v2, v2)
    get_bytes("VersionId=null (the object put before versioning)", DOC, d0, "null", "null")
    get_bytes("without VersionId (the latest, D2)", DOC, d2, None, v2)
    for what, vid, data in (("<D1>", v1, d1), ("null", "null", d0), ("<D2>", v2, d2)):
        out = c.call(f"HeadObject {DOC} VersionId={what}", s3.head_object, Bucket=BUCKET, Key=DOC, VersionId=vid)
        if out:
            c.eq(f"HeadObject VersionId={what}: ContentLength", out.get("ContentLength"), len(data))
            c.eq(f"HeadObject VersionId={what}: ETag", out.get("ETag"), quoted_md5(data))
            c.eq(f"HeadObject VersionId={what}: VersionId", out.get("VersionId"), vid)
    out = c.call(f"HeadObject {DOC} without VersionId", s3.head_object, Bucket=BUCKET, Key=DOC)
    if out:
        c.eq("HeadObject without VersionId: the latest VersionId", out.get("VersionId"), v2)
        c.eq("HeadObject without VersionId: the latest ContentLength", out.get("ContentLength"), len(d2))

    a1 = os.urandom(3000)
    z1, z2 = os.urandom(4000), os.urandom(5000)
    ida1 = fresh_id(f"PutObject {ALPHA} A1", put("A1", ALPHA, a1).get("VersionId"))
    idz1 = fresh_id(f"PutObject {ZETA} Z1", put("Z1", ZETA, z1).get("VersionId"))
    idz2 = fresh_id(f"PutObject {ZETA} Z2", put("Z2", ZETA, z2).get("VersionId"))

    # ------------------------------------------------------------------ delete markers
    c.step("DeleteObject without VersionId on a versioned bucket: a delete marker")
    markers = {}
    for key in (DOC, ALPHA):
        out = c.call(f"DeleteObject {key} without VersionId", s3.delete_object, Bucket=BUCKET, Key=key)
        if out:
            c.eq(f"DeleteObject {key}: DeleteMarker", out.get("DeleteMarker"), True)
        markers[key] = fresh_id(f"DeleteObject {key} (the marker)", (out or {}).get("VersionId"))
    mdoc, malpha = markers[DOC], markers[ALPHA]

    h = fails(f"GetObject {DOC} (latest is a delete marker): 404 NoSuchKey", "NoSuchKey", 404,
              s3.get_object, Bucket=BUCKET, Key=DOC)
    delete_marker_header(f"GetObject {DOC} 404", h)
    if h is not None and "x-amz-version-id" in h:
        c.eq(f"GetObject {DOC} 404: x-amz-version-id is the marker's", h["x-amz-version-id"], mdoc)
    h = fails(f"HeadObject {DOC} (latest is a delete marker): 404", "404", 404,
              s3.head_object, Bucket=BUCKET, Key=DOC)
    delete_marker_header(f"HeadObject {DOC} 404", h)
    h = fails(f"GetObject {DOC} VersionId=<the marker>: 405 MethodNotAllowed", "MethodNotAllowed", 405,
              s3.get_object, Bucket=BUCKET, Key=DOC, VersionId=mdoc)
    delete_marker_header(f"GetObject {DOC} VersionId=<the marker> 405", h)
    h = fails(f"HeadObject {DOC} VersionId=<the marker>: 405", "405", 405,
              s3.head_object, Bucket=BUCKET, Key=DOC, VersionId=mdoc)
    delete_marker_header(f"HeadObject {DOC} VersionId=<the marker> 405", h)
    get_bytes("VersionId=<D2> behind the marker", DOC, d2, v2, v2)
    get_bytes("VersionId=null behind the marker", DOC, d0, "null", "null")

    c.step("ListObjectVersions: versions and markers, keys ascending, newest first, IsLatest")
    all_entries = [
        (MARKER, ALPHA, malpha, True), (VERSION, ALPHA, ida1, False),
        (MARKER, DOC, mdoc, True), (VERSION, DOC, v2, False), (VERSION, DOC, v1, False),
        (VERSION, DOC, "null", False),
        (VERSION, ZETA, idz2, True), (VERSION, ZETA, idz1, False),
    ]
    out, unpaged = expect_listing("of the whole bucket", all_entries)
    if out:
        sizes = {(v["Key"], v["VersionId"]): (v.get("Size"), v.get("ETag")) for v in out.get("Versions", [])}
        c.eq("ListObjectVersions: Size and ETag of each version", sizes, {
            (ALPHA, ida1): (len(a1), quoted_md5(a1)),
            (DOC, v2): (len(d2), quoted_md5(d2)), (DOC, v1): (len(d1), quoted_md5(d1)),
            (DOC, "null"): (len(d0), quoted_md5(d0)),
            (ZETA, idz2): (len(z2), quoted_md5(z2)), (ZETA, idz1): (len(z1), quoted_md5(z1)),
        })
        c.eq("ListObjectVersions: the parsed DeleteMarkers (Key, VersionId, IsLatest)",
             [(m["Key"], m["VersionId"], m.get("IsLatest")) for m in out.get("DeleteMarkers", [])],
             [(ALPHA, malpha, True), (DOC, mdoc, True)])
    for size in (1, 3):
        got = c.call(f"ListObjectVersions paged by MaxKeys={size} (KeyMarker + VersionIdMarker)", paged, size)
        if got is not None and unpaged is not None:
            c.check(got == unpaged, f"paged by {size}: exactly the entries of the unpaged listing, in order",
                    f"unpaged:\n{show(unpaged)}\npaged:\n{show(got)}")
    expect_listing(f"Prefix={DOC}", [e for e in all_entries if e[1] == DOC], Prefix=DOC)
    expect_listing(f"KeyMarker={DOC} (keys after it)", [e for e in all_entries if e[1] > DOC], KeyMarker=DOC)
    out = c.call("ListObjectsV2", s3.list_objects_v2, Bucket=BUCKET)
    if out:
        c.eq("ListObjectsV2 hides the keys whose latest version is a marker",
             [o["Key"] for o in out.get("Contents", [])], [ZETA])

    # ------------------------------------------------------------------ deleting versions
    c.step("DeleteObject VersionId=<the marker>: the previous version is current again")
    out = c.call(f"DeleteObject {DOC} VersionId=<its marker>", s3.delete_object, Bucket=BUCKET, Key=DOC,
                 VersionId=mdoc)
    if out:
        c.eq("removing a marker: DeleteMarker", out.get("DeleteMarker"), True)
        c.eq("removing a marker: VersionId is the marker's", out.get("VersionId"), mdoc)
    get_bytes("without VersionId after removing the marker (D2 again)", DOC, d2, None, v2)
    out = c.call("ListObjectsV2", s3.list_objects_v2, Bucket=BUCKET)
    if out:
        c.eq(f"ListObjectsV2 shows {DOC} again", [o["Key"] for o in out.get("Contents", [])], [DOC, ZETA])

    c.step("DeleteObject VersionId=<a noncurrent version>: that version is gone for good")
    out = c.call(f"DeleteObject {DOC} VersionId=<D1>", s3.delete_object, Bucket=BUCKET, Key=DOC, VersionId=v1)
    if out:
        c.eq("deleting a version: VersionId is echoed", out.get("VersionId"), v1)
        c.check(out.get("DeleteMarker") in (None, False), "deleting a version: it was no delete marker",
                f"DeleteMarker: {out.get('DeleteMarker')!r}")
    fails(f"GetObject {DOC} VersionId=<D1, deleted>: 404 NoSuchVersion", "NoSuchVersion", 404,
          s3.get_object, Bucket=BUCKET, Key=DOC, VersionId=v1)
    fails(f"HeadObject {DOC} VersionId=<D1, deleted>: 404", "404", 404,
          s3.head_object, Bucket=BUCKET, Key=DOC, VersionId=v1)
    get_bytes("without VersionId: still D2", DOC, d2, None, v2)
    get_bytes("VersionId=null: still D0", DOC, d0, "null", "null")
    expect_listing(f"Prefix={DOC} after deleting D1",
                   [(VERSION, DOC, v2, True), (VERSION, DOC, "null", False)], Prefix=DOC)

    c.step("DeleteObjects with VersionIds, and without one on a versioned bucket")
    out = c.call(f"DeleteObjects {ZETA}@<Z1>, {ALPHA}@<its marker>, {DOC} (no VersionId)",
                 s3.delete_objects, Bucket=BUCKET, Delete={"Objects": [
                     {"Key": ZETA, "VersionId": idz1},
                     {"Key": ALPHA, "VersionId": malpha},
                     {"Key": DOC},
                 ]})
    mdoc2 = "missing-DeleteObjects-marker"
    if out:
        c.eq("DeleteObjects: no Errors", out.get("Errors", []), [])
        deleted = {d["Key"]: d for d in out.get("Deleted", [])}
        c.eq("DeleteObjects: the three keys are Deleted", sorted(deleted), sorted([ZETA, ALPHA, DOC]))
        z, a, d = deleted.get(ZETA, {}), deleted.get(ALPHA, {}), deleted.get(DOC, {})
        c.eq(f"Deleted {ZETA}: VersionId echoed", z.get("VersionId"), idz1)
        c.check(z.get("DeleteMarker") in (None, False), f"Deleted {ZETA}: not a delete marker", z)
        c.eq(f"Deleted {ALPHA}: VersionId echoed", a.get("VersionId"), malpha)
        c.eq(f"Deleted {ALPHA}: DeleteMarker (a marker was removed)", a.get("DeleteMarker"), True)
        c.check(a.get("DeleteMarkerVersionId") in (None, malpha),
                f"Deleted {ALPHA}: DeleteMarkerVersionId, if sent, is the removed marker's", a)
        c.eq(f"Deleted {DOC}: DeleteMarker (a marker was created)", d.get("DeleteMarker"), True)
        mdoc2 = fresh_id(f"Deleted {DOC}: DeleteMarkerVersionId", d.get("DeleteMarkerVersionId"))
    get_bytes("without VersionId: A1 is current again", ALPHA, a1, None, ida1)
    fails(f"GetObject {DOC} after the batch delete: 404 NoSuchKey", "NoSuchKey", 404,
          s3.get_object, Bucket=BUCKET, Key=DOC)
    fails(f"GetObject {ZETA} VersionId=<Z1, deleted>: 404 NoSuchVersion", "NoSuchVersion", 404,
          s3.get_object, Bucket=BUCKET, Key=ZETA, VersionId=idz1)
    get_bytes("without VersionId: still Z2", ZETA, z2, None, idz2)
    expect_listing("after the batch delete", [
        (VERSION, ALPHA, ida1, True),
        (MARKER, DOC, mdoc2, True), (VERSION, DOC, v2, False), (VERSION, DOC, "null", False),
        (VERSION, ZETA, idz2, True),
    ])

    # ------------------------------------------------------------------ copy
    c.step("CopyObject of a given source version")
    fails(f"CopyObject from {DOC} without VersionId (latest is a marker): 404 NoSuchKey", "NoSuchKey", 404,
          s3.copy_object, Bucket=BUCKET, Key="never.txt", CopySource={"Bucket": BUCKET, "Key": DOC})
    fails(f"CopyObject from {DOC} VersionId=<its marker>: 400 (a marker cannot be copied)", None, 400,
          s3.copy_object, Bucket=BUCKET, Key="never.txt",
          CopySource={"Bucket": BUCKET, "Key": DOC, "VersionId": mdoc2})
    out = c.call(f"CopyObject {DOC}@null -> {DOC} (restore the pre-versioning bytes)", s3.copy_object,
                 Bucket=BUCKET, Key=DOC, CopySource={"Bucket": BUCKET, "Key": DOC, "VersionId": "null"})
    c1 = fresh_id(f"CopyObject -> {DOC}", (out or {}).get("VersionId"))
    if out:
        c.eq("CopyObject @null: CopySourceVersionId", out.get("CopySourceVersionId"), "null")
        c.eq("CopyObject @null: ETag of D0", out.get("CopyObjectResult", {}).get("ETag"), quoted_md5(d0))
    get_bytes("without VersionId after the copy: D0's bytes", DOC, d0, None, c1)
    out = c.call(f"CopyObject {DOC}@<D2> -> {RESTORED}", s3.copy_object, Bucket=BUCKET, Key=RESTORED,
                 CopySource={"Bucket": BUCKET, "Key": DOC, "VersionId": v2})
    crest = fresh_id(f"CopyObject -> {RESTORED}", (out or {}).get("VersionId"))
    if out:
        c.eq("CopyObject @<D2>: CopySourceVersionId", out.get("CopySourceVersionId"), v2)
    get_bytes("(a copy of the noncurrent D2)", RESTORED, d2, None, crest)
    expect_listing(f"Prefix={DOC} after the copy", [
        (VERSION, DOC, c1, True), (MARKER, DOC, mdoc2, False), (VERSION, DOC, v2, False),
        (VERSION, DOC, "null", False),
    ], Prefix=DOC)

    # ------------------------------------------------------------------ multipart
    c.step("a multipart upload completed on a versioned bucket is a new version")
    p1 = os.urandom(777)
    idp1 = fresh_id(f"PutObject {BIG} P1", put("P1, single PUT", BIG, p1).get("VersionId"))
    part_size = 5 * MiB
    big = os.urandom(part_size + 1024)
    mpu = c.call(f"CreateMultipartUpload {BIG}", s3.create_multipart_upload, Bucket=BUCKET, Key=BIG)
    idmpu = "missing-multipart"
    if mpu:
        parts = []
        for n, chunk in enumerate((big[:part_size], big[part_size:]), start=1):
            up = c.call(f"UploadPart {n} ({len(chunk)} B)", s3.upload_part, Bucket=BUCKET, Key=BIG,
                        UploadId=mpu["UploadId"], PartNumber=n, Body=chunk)
            if up:
                parts.append({"PartNumber": n, "ETag": up["ETag"]})
        done = c.call(f"CompleteMultipartUpload {BIG}", s3.complete_multipart_upload, Bucket=BUCKET, Key=BIG,
                      UploadId=mpu["UploadId"], MultipartUpload={"Parts": parts})
        idmpu = fresh_id("CompleteMultipartUpload", (done or {}).get("VersionId"))
        if done:
            c.eq("CompleteMultipartUpload: ETag md5(part MD5s)-2", done.get("ETag"), multipart_etag(big, part_size))
    get_bytes("VersionId=<the multipart version>", BIG, big, idmpu, idmpu)
    get_bytes("VersionId=<P1>, the single PUT before it", BIG, p1, idp1, idp1)
    out = c.call(f"HeadObject {BIG} without VersionId", s3.head_object, Bucket=BUCKET, Key=BIG)
    if out:
        c.eq("HeadObject: the multipart version is the latest", out.get("VersionId"), idmpu)
        c.eq("HeadObject: ContentLength", out.get("ContentLength"), len(big))
    expect_listing(f"Prefix={BIG}", [(VERSION, BIG, idmpu, True), (VERSION, BIG, idp1, False)], Prefix=BIG)

    # ------------------------------------------------------------------ suspended
    c.step("PutBucketVersioning Suspended: PUTs write (and overwrite) the 'null' version")
    set_versioning("Suspended")
    versioning("after Suspended", "Suspended")
    s1, s2 = os.urandom(6000), os.urandom(7000)
    for what, data in (("S1, suspended", s1), ("S2, suspended", s2)):
        out = put(what, DOC, data)
        c.check(out.get("VersionId") in (None, "null"),
                f"PutObject {what}: no real VersionId (absent, as AWS answers, or 'null')",
                f"VersionId: {out.get('VersionId')!r}")
    out = c.call(f"HeadObject {DOC} without VersionId", s3.head_object, Bucket=BUCKET, Key=DOC)
    if out:
        c.eq("HeadObject: the latest is the 'null' version", out.get("VersionId"), "null")
        c.eq("HeadObject: ContentLength of S2", out.get("ContentLength"), len(s2))
    get_bytes("VersionId=null: S2 (it replaced D0, then S1)", DOC, s2, "null", "null")
    get_bytes("without VersionId: S2", DOC, s2, None, "null")
    get_bytes("VersionId=<the copy>: still D0's bytes", DOC, d0, c1, c1)
    get_bytes("VersionId=<D2>: still D2", DOC, d2, v2, v2)
    expect_listing(f"Prefix={DOC} while suspended (one 'null' version, the real ones kept)", [
        (VERSION, DOC, "null", True), (VERSION, DOC, c1, False), (MARKER, DOC, mdoc2, False),
        (VERSION, DOC, v2, False),
    ], Prefix=DOC)
    put("N, suspended", SUSP, os.urandom(100))
    out = c.call(f"DeleteObject {SUSP} without VersionId while suspended", s3.delete_object, Bucket=BUCKET,
                 Key=SUSP)
    if out:
        c.eq("suspended delete: DeleteMarker", out.get("DeleteMarker"), True)
        c.check(out.get("VersionId") in (None, "null"),
                "suspended delete: the marker's VersionId is 'null' (or absent)",
                f"VersionId: {out.get('VersionId')!r}")
    expect_listing(f"Prefix={SUSP}: the 'null' marker replaced the 'null' version",
                   [(MARKER, SUSP, "null", True)], Prefix=SUSP)

    c.step("PutBucketVersioning with MFADelete=Enabled is refused")
    c.error("PutBucketVersioning MFADelete=Enabled fails with NotImplemented", "NotImplemented",
            s3.put_bucket_versioning, Bucket=BUCKET,
            VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"})
    versioning("after the refused MFADelete (unchanged)", "Suspended")

    # ------------------------------------------------------------------ cleanup
    c.step("cleanup: markers on every key, then BucketNotEmpty until every version and marker is gone")
    out = c.call("ListObjectsV2", s3.list_objects_v2, Bucket=BUCKET)
    current = [o["Key"] for o in (out or {}).get("Contents", [])]
    c.eq("ListObjectsV2: the current keys", current, sorted([ALPHA, BIG, DOC, RESTORED, ZETA]))
    out = c.call(f"DeleteObjects of the {len(current)} current keys without VersionId", s3.delete_objects,
                 Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in current]})
    if out:
        c.eq("DeleteObjects: no Errors", out.get("Errors", []), [])
        c.eq("DeleteObjects: every key reported Deleted with DeleteMarker true",
             sorted((d["Key"], d.get("DeleteMarker")) for d in out.get("Deleted", [])),
             [(k, True) for k in current])
    out = c.call("ListObjectsV2 after the markers", s3.list_objects_v2, Bucket=BUCKET)
    if out:
        c.eq("ListObjectsV2: no current key", out.get("Contents", []), [])
    out, entries = listing("after the markers")
    if entries is not None:
        latest = [(e[0], e[1]) for e in entries if e[3]]
        c.eq("the latest version of every key is a delete marker", latest,
             [(MARKER, k) for k in sorted([ALPHA, BIG, DOC, RESTORED, SUSP, ZETA])])
    c.error("DeleteBucket with only noncurrent versions and markers left fails with BucketNotEmpty",
            "BucketNotEmpty", s3.delete_bucket, Bucket=BUCKET)

    versions = [(e[1], e[2]) for e in entries or [] if e[0] == VERSION]
    out = c.call(f"DeleteObjects of the {len(versions)} versions by VersionId (markers kept)",
                 s3.delete_objects, Bucket=BUCKET,
                 Delete={"Objects": [{"Key": k, "VersionId": v} for k, v in versions]})
    if out:
        c.eq("DeleteObjects: no Errors", out.get("Errors", []), [])
        c.eq("DeleteObjects: every (Key, VersionId) echoed in Deleted",
             sorted((d["Key"], d.get("VersionId")) for d in out.get("Deleted", [])), sorted(versions))
    out, entries = listing("with only markers left")
    if entries is not None:
        c.check(entries != [] and all(e[0] == MARKER for e in entries), "only delete markers are left",
                show(entries))
    c.error("DeleteBucket with only delete markers left fails with BucketNotEmpty", "BucketNotEmpty",
            s3.delete_bucket, Bucket=BUCKET)

    marks = [(e[1], e[2]) for e in entries or [] if e[0] == MARKER]
    out = c.call(f"DeleteObjects of the {len(marks)} markers by VersionId", s3.delete_objects, Bucket=BUCKET,
                 Delete={"Objects": [{"Key": k, "VersionId": v} for k, v in marks]})
    if out:
        c.eq("DeleteObjects: no Errors", out.get("Errors", []), [])
        c.eq("DeleteObjects: every marker echoed with DeleteMarker true",
             sorted((d["Key"], d.get("VersionId"), d.get("DeleteMarker")) for d in out.get("Deleted", [])),
             sorted((k, v, True) for k, v in marks))
    out, entries = listing("after deleting everything")
    if out:
        c.eq("no versions left", out.get("Versions", []), [])
        c.eq("no delete markers left", out.get("DeleteMarkers", []), [])
    c.call(f"DeleteBucket {BUCKET}", s3.delete_bucket, Bucket=BUCKET)
    c.error("HeadBucket after delete: 404", "404", s3.head_bucket, Bucket=BUCKET)
    c.finish()


if __name__ == "__main__":
    main()
