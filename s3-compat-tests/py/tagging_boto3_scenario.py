"""boto3 object and bucket tagging against the server at $ENDPOINT (see README.md).

What S3 documents, and what is checked here:
- PutObject / CreateMultipartUpload / CopyObject take the tag set in the
  x-amz-tagging header, URL-query encoded ("a=1&b=two%20words");
  Put/Get/DeleteObjectTagging work on the ?tagging subresource, with an XML TagSet;
- GET and HEAD of a tagged object answer x-amz-tagging-count (boto3's TagCount),
  and an untagged object has no such header;
- PutObjectTagging replaces the whole set; DeleteObjectTagging empties it (204);
- at most 10 tags on an object (BadRequest, or InvalidTag: both are 400), no key
  twice (InvalidTag), keys up to 128 and values up to 256 characters (InvalidTag);
  a refused request leaves the set as it was;
- CopyObject copies the source's tags (TaggingDirective COPY, the default), or
  takes the request's (REPLACE);
- on a versioned bucket each version has its own tags: the VersionId parameter
  picks one, and the answer carries x-amz-version-id (boto3's VersionId);
- bucket tagging: GetBucketTagging of an untagged bucket fails with 404
  NoSuchTagSet; Put replaces the set; Delete removes it (204);
- tagging a missing key fails with 404 NoSuchKey.
Version ids are opaque: they are compared with the ids the server returned.
"""

import os

import boto3
from botocore.exceptions import ClientError

from compat import BUCKET, Checks, client, error_code

VBUCKET = BUCKET + "-versioned"
MiB = 1024 * 1024

SRC = "tagged.txt"
MISSING = "no-such-key.txt"


def tagset(tags):
    """A boto3 TagSet from a dict."""
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def as_dict(tag_set):
    """A TagSet as a dict, or a list of pairs if a key repeats (so that shows)."""
    pairs = [(t.get("Key"), t.get("Value")) for t in tag_set or []]
    d = dict(pairs)
    return d if len(d) == len(pairs) else sorted(pairs)


def main():
    c = Checks("tagging-boto3")
    s3 = client()
    print(f"boto3 {boto3.__version__}, endpoint {s3.meta.endpoint_url}")

    def status_of(out):
        return out.get("ResponseMetadata", {}).get("HTTPStatusCode")

    def tags_are(what, key, expected, bucket=BUCKET, version_id=None, expect_version=None):
        """GetObjectTagging must answer exactly EXPECTED (a dict; order does not matter)."""
        kw = {"VersionId": version_id} if version_id is not None else {}
        out = c.call(f"GetObjectTagging {key} {what}", s3.get_object_tagging, Bucket=bucket, Key=key, **kw)
        if out:
            c.eq(f"GetObjectTagging {key} {what}: the tags", as_dict(out.get("TagSet")), expected)
            if expect_version is not None:
                c.eq(f"GetObjectTagging {key} {what}: VersionId", out.get("VersionId"), expect_version)
        return out

    def tag_count(what, key, expected, bucket=BUCKET, version_id=None):
        """HEAD and GET must answer x-amz-tagging-count EXPECTED (None: no header)."""
        kw = {"VersionId": version_id} if version_id is not None else {}
        out = c.call(f"HeadObject {key} {what}", s3.head_object, Bucket=bucket, Key=key, **kw)
        if out:
            c.eq(f"HeadObject {key} {what}: TagCount (x-amz-tagging-count)", out.get("TagCount"), expected)
        out = c.call(f"GetObject {key} {what}", s3.get_object, Bucket=bucket, Key=key, **kw)
        if out:
            out["Body"].read()
            c.eq(f"GetObject {key} {what}: TagCount (x-amz-tagging-count)", out.get("TagCount"), expected)

    def fails(what, codes, status, fn, **kw):
        """The request must fail with HTTP STATUS and one of the error CODES."""
        try:
            result = fn(**kw)
        except ClientError as e:
            meta = e.response.get("ResponseMetadata", {})
            got = (error_code(e), meta.get("HTTPStatusCode"))
            return c.check(got[0] in codes and got[1] == status, what,
                           f"expected: {status} {' or '.join(codes)}\nactual:   {got[1]} {got[0]}\n"
                           f"error {e.response.get('Error')}")
        except Exception as e:  # noqa: BLE001 - any other failure is a failed check
            return c.check(False, what, f"expected {status} {' or '.join(codes)}, got {e!r}")
        return c.check(False, what, f"expected {status} {' or '.join(codes)}, got success: {result!r}")

    def put_tags(what, key, tags, bucket=BUCKET, **kw):
        out = c.call(f"PutObjectTagging {key} {what}", s3.put_object_tagging, Bucket=bucket, Key=key,
                     Tagging={"TagSet": tagset(tags)}, **kw)
        if out:
            c.eq(f"PutObjectTagging {key} {what}: HTTP 200", status_of(out), 200)
        return out

    # ------------------------------------------------------------------ PutObject with x-amz-tagging
    c.step("PutObject with Tagging='a=1&b=two%20words': the tags, and x-amz-tagging-count")
    c.call(f"CreateBucket {BUCKET}", s3.create_bucket, Bucket=BUCKET)
    data = os.urandom(2000)
    c.call(f"PutObject {SRC} Tagging='a=1&b=two%20words'", s3.put_object, Bucket=BUCKET, Key=SRC, Body=data,
           Tagging="a=1&b=two%20words")
    tags_are("after PutObject", SRC, {"a": "1", "b": "two words"})
    tag_count("after PutObject", SRC, 2)

    c.call("PutObject plain.txt without Tagging", s3.put_object, Bucket=BUCKET, Key="plain.txt", Body=b"plain")
    tags_are("of an untagged object", "plain.txt", {})
    tag_count("of an untagged object (no header)", "plain.txt", None)

    # Query encoding: %3D, %2B and %2F are a '=', a '+' and a '/' inside a value, %C3%A9 is 'é';
    # an empty value is allowed. (Only characters the tag rules allow: letters, digits,
    # spaces and + - = . _ : / @.)
    special = "eq=p%3Dq&plus=a%2Bb&path=x%2Fy%3Az%40w&empty=&uni=%C3%A9t%C3%A9"
    c.call(f"PutObject special.txt Tagging='{special}'", s3.put_object, Bucket=BUCKET, Key="special.txt",
           Body=b"special", Tagging=special)
    tags_are("(decoded from the header)", "special.txt",
             {"eq": "p=q", "plus": "a+b", "path": "x/y:z@w", "empty": "", "uni": "été"})

    # ------------------------------------------------------------------ Put/DeleteObjectTagging
    c.step("PutObjectTagging replaces the whole set; DeleteObjectTagging empties it")
    put_tags("{c: 3, 'd e': 'x + y = z/@é'}", SRC, {"c": "3", "d e": "x + y = z/@é"})
    tags_are("after PutObjectTagging (a, b gone)", SRC, {"c": "3", "d e": "x + y = z/@é"})
    tag_count("after PutObjectTagging", SRC, 2)
    put_tags("{only: one}", SRC, {"only": "one"})
    tags_are("after a second PutObjectTagging", SRC, {"only": "one"})
    tag_count("after a second PutObjectTagging", SRC, 1)
    out = c.call(f"DeleteObjectTagging {SRC}", s3.delete_object_tagging, Bucket=BUCKET, Key=SRC)
    if out:
        c.eq("DeleteObjectTagging: HTTP 204", status_of(out), 204)
    tags_are("after DeleteObjectTagging (an empty TagSet)", SRC, {})
    tag_count("after DeleteObjectTagging (no header)", SRC, None)
    out = c.call(f"GetObject {SRC}: the bytes are untouched by tagging", s3.get_object, Bucket=BUCKET, Key=SRC)
    if out:
        c.eq("GetObject: the same bytes", out["Body"].read(), data)
    out = c.call(f"DeleteObjectTagging {SRC} again (nothing to delete)", s3.delete_object_tagging, Bucket=BUCKET,
                 Key=SRC)
    if out:
        c.eq("DeleteObjectTagging of an untagged object: HTTP 204", status_of(out), 204)

    # ------------------------------------------------------------------ limits
    c.step("limits: 10 tags, unique keys, key <= 128 and value <= 256 characters; a refused set changes nothing")
    ten = {f"k{i}": f"v{i}" for i in range(10)}
    put_tags("with 10 tags (the most allowed)", SRC, ten)
    tags_are("with 10 tags", SRC, ten)
    tag_count("with 10 tags", SRC, 10)
    eleven = {f"k{i}": f"v{i}" for i in range(11)}
    fails("PutObjectTagging with 11 tags: 400 BadRequest or InvalidTag", ("BadRequest", "InvalidTag"), 400,
          s3.put_object_tagging, Bucket=BUCKET, Key=SRC, Tagging={"TagSet": tagset(eleven)})
    fails("PutObjectTagging with the same key twice: 400 InvalidTag", ("InvalidTag",), 400,
          s3.put_object_tagging, Bucket=BUCKET, Key=SRC,
          Tagging={"TagSet": [{"Key": "dup", "Value": "1"}, {"Key": "dup", "Value": "2"}]})
    fails("PutObjectTagging with a 129-character key: 400 InvalidTag", ("InvalidTag",), 400,
          s3.put_object_tagging, Bucket=BUCKET, Key=SRC, Tagging={"TagSet": tagset({"k" * 129: "v"})})
    fails("PutObjectTagging with a 257-character value: 400 InvalidTag", ("InvalidTag",), 400,
          s3.put_object_tagging, Bucket=BUCKET, Key=SRC, Tagging={"TagSet": tagset({"k": "v" * 257})})
    tags_are("after the refused requests (still the 10 tags)", SRC, ten)
    longest = {"k" * 128: "v" * 256}
    put_tags("with a 128-character key and a 256-character value", SRC, longest)
    tags_are("with the longest key and value", SRC, longest)
    fails("PutObject with 11 tags in x-amz-tagging: 400 BadRequest or InvalidTag", ("BadRequest", "InvalidTag"),
          400, s3.put_object, Bucket=BUCKET, Key="eleven.txt", Body=b"x",
          Tagging="&".join(f"{k}={v}" for k, v in eleven.items()))
    fails("HeadObject eleven.txt: the refused PutObject stored nothing (404)", ("404",), 404,
          s3.head_object, Bucket=BUCKET, Key="eleven.txt")

    # ------------------------------------------------------------------ copy
    c.step("CopyObject: TaggingDirective COPY (the default) keeps the source's tags, REPLACE takes the request's")
    put_tags("{a: 1, b: 'two words'}", SRC, {"a": "1", "b": "two words"})
    source = {"Bucket": BUCKET, "Key": SRC}
    c.call(f"CopyObject {SRC} -> copy-default.txt (no TaggingDirective)", s3.copy_object, Bucket=BUCKET,
           Key="copy-default.txt", CopySource=source)
    tags_are("(copied by default)", "copy-default.txt", {"a": "1", "b": "two words"})
    tag_count("(copied by default)", "copy-default.txt", 2)
    c.call(f"CopyObject {SRC} -> copy-copy.txt TaggingDirective=COPY", s3.copy_object, Bucket=BUCKET,
           Key="copy-copy.txt", CopySource=source, TaggingDirective="COPY")
    tags_are("(TaggingDirective COPY)", "copy-copy.txt", {"a": "1", "b": "two words"})
    c.call(f"CopyObject {SRC} -> copy-replace.txt TaggingDirective=REPLACE Tagging='c=3'", s3.copy_object,
           Bucket=BUCKET, Key="copy-replace.txt", CopySource=source, TaggingDirective="REPLACE", Tagging="c=3")
    tags_are("(TaggingDirective REPLACE, c=3)", "copy-replace.txt", {"c": "3"})
    tag_count("(TaggingDirective REPLACE, c=3)", "copy-replace.txt", 1)
    c.call(f"CopyObject {SRC} -> copy-replace-none.txt TaggingDirective=REPLACE without Tagging", s3.copy_object,
           Bucket=BUCKET, Key="copy-replace-none.txt", CopySource=source, TaggingDirective="REPLACE")
    tags_are("(TaggingDirective REPLACE and no tags: none)", "copy-replace-none.txt", {})
    tags_are("(the source is unchanged)", SRC, {"a": "1", "b": "two words"})

    # ------------------------------------------------------------------ multipart
    c.step("CreateMultipartUpload with Tagging='m=1': the completed object has the tags")
    mpu = c.call("CreateMultipartUpload multipart.bin Tagging='m=1'", s3.create_multipart_upload, Bucket=BUCKET,
                 Key="multipart.bin", Tagging="m=1")
    if mpu:
        part1, part2 = os.urandom(5 * MiB), os.urandom(1000)
        parts = []
        for n, chunk in ((1, part1), (2, part2)):
            up = c.call(f"UploadPart {n} ({len(chunk)} B)", s3.upload_part, Bucket=BUCKET, Key="multipart.bin",
                        UploadId=mpu["UploadId"], PartNumber=n, Body=chunk)
            if up:
                parts.append({"PartNumber": n, "ETag": up["ETag"]})
        c.call("CompleteMultipartUpload multipart.bin", s3.complete_multipart_upload, Bucket=BUCKET,
               Key="multipart.bin", UploadId=mpu["UploadId"], MultipartUpload={"Parts": parts})
    tags_are("(from CreateMultipartUpload)", "multipart.bin", {"m": "1"})
    tag_count("(from CreateMultipartUpload)", "multipart.bin", 1)

    # ------------------------------------------------------------------ missing key
    c.step("tagging a missing key: 404 NoSuchKey")
    fails(f"GetObjectTagging {MISSING}: 404 NoSuchKey", ("NoSuchKey",), 404,
          s3.get_object_tagging, Bucket=BUCKET, Key=MISSING)
    fails(f"PutObjectTagging {MISSING}: 404 NoSuchKey", ("NoSuchKey",), 404,
          s3.put_object_tagging, Bucket=BUCKET, Key=MISSING, Tagging={"TagSet": tagset({"a": "1"})})
    fails(f"DeleteObjectTagging {MISSING}: 404 NoSuchKey", ("NoSuchKey",), 404,
          s3.delete_object_tagging, Bucket=BUCKET, Key=MISSING)
    fails(f"HeadObject {MISSING}: PutObjectTagging created nothing (404)", ("404",), 404,
          s3.head_object, Bucket=BUCKET, Key=MISSING)

    # ------------------------------------------------------------------ bucket tagging
    c.step("bucket tagging: NoSuchTagSet on an untagged bucket; Put replaces the set; Delete removes it")
    fails(f"GetBucketTagging {BUCKET} (untagged): 404 NoSuchTagSet", ("NoSuchTagSet",), 404,
          s3.get_bucket_tagging, Bucket=BUCKET)
    btags = {"team": "storage", "cost center": "a/b+c=d"}
    c.call("PutBucketTagging {team, 'cost center'}", s3.put_bucket_tagging, Bucket=BUCKET,
           Tagging={"TagSet": tagset(btags)})
    out = c.call("GetBucketTagging", s3.get_bucket_tagging, Bucket=BUCKET)
    if out:
        c.eq("GetBucketTagging: the tags put", as_dict(out.get("TagSet")), btags)
    c.call("PutBucketTagging {env: test} (replaces the set)", s3.put_bucket_tagging, Bucket=BUCKET,
           Tagging={"TagSet": tagset({"env": "test"})})
    out = c.call("GetBucketTagging", s3.get_bucket_tagging, Bucket=BUCKET)
    if out:
        c.eq("GetBucketTagging: only the second set", as_dict(out.get("TagSet")), {"env": "test"})
    fails("PutBucketTagging with the same key twice: 400 InvalidTag", ("InvalidTag",), 400,
          s3.put_bucket_tagging, Bucket=BUCKET,
          Tagging={"TagSet": [{"Key": "dup", "Value": "1"}, {"Key": "dup", "Value": "2"}]})
    out = c.call("GetBucketTagging after the refused put", s3.get_bucket_tagging, Bucket=BUCKET)
    if out:
        c.eq("GetBucketTagging: unchanged", as_dict(out.get("TagSet")), {"env": "test"})
    tags_are("(bucket tags are not object tags)", "plain.txt", {})
    out = c.call("DeleteBucketTagging", s3.delete_bucket_tagging, Bucket=BUCKET)
    if out:
        c.eq("DeleteBucketTagging: HTTP 204", status_of(out), 204)
    fails("GetBucketTagging after DeleteBucketTagging: 404 NoSuchTagSet", ("NoSuchTagSet",), 404,
          s3.get_bucket_tagging, Bucket=BUCKET)
    fails("GetBucketTagging of a missing bucket: 404 NoSuchBucket", ("NoSuchBucket",), 404,
          s3.get_bucket_tagging, Bucket="no-such-bucket-tagging")

    # ------------------------------------------------------------------ versions
    c.step(f"a versioning-Enabled bucket ({VBUCKET}): each version has its own tags")
    c.call(f"CreateBucket {VBUCKET}", s3.create_bucket, Bucket=VBUCKET)
    c.call("PutBucketVersioning Status=Enabled", s3.put_bucket_versioning, Bucket=VBUCKET,
           VersioningConfiguration={"Status": "Enabled"})
    key = "doc.txt"
    out1 = c.call(f"PutObject {key} version 1 Tagging='v=1'", s3.put_object, Bucket=VBUCKET, Key=key,
                  Body=os.urandom(100), Tagging="v=1") or {}
    out2 = c.call(f"PutObject {key} version 2 Tagging='v=2&w=x'", s3.put_object, Bucket=VBUCKET, Key=key,
                  Body=os.urandom(200), Tagging="v=2&w=x") or {}
    v1, v2 = out1.get("VersionId") or "missing-v1", out2.get("VersionId") or "missing-v2"
    c.check(v1 not in ("missing-v1", "null") and v2 not in ("missing-v2", "null") and v1 != v2,
            "the two PutObject answers have distinct real VersionIds", f"{v1!r} and {v2!r}")
    tags_are("VersionId=<version 1>", key, {"v": "1"}, VBUCKET, v1, v1)
    tags_are("VersionId=<version 2>", key, {"v": "2", "w": "x"}, VBUCKET, v2, v2)
    tags_are("without VersionId (the latest, version 2)", key, {"v": "2", "w": "x"}, VBUCKET, None, v2)
    tag_count("VersionId=<version 1>", key, 1, VBUCKET, v1)
    tag_count("without VersionId", key, 2, VBUCKET)

    out = put_tags("VersionId=<version 1> {v: one, new: yes}", key, {"v": "one", "new": "yes"}, VBUCKET,
                   VersionId=v1)
    if out:
        c.eq("PutObjectTagging VersionId=<version 1>: the answer's VersionId", out.get("VersionId"), v1)
    tags_are("VersionId=<version 1> after tagging it", key, {"v": "one", "new": "yes"}, VBUCKET, v1, v1)
    tags_are("VersionId=<version 2> unchanged", key, {"v": "2", "w": "x"}, VBUCKET, v2, v2)
    tag_count("VersionId=<version 1> after tagging it", key, 2, VBUCKET, v1)

    out = put_tags("without VersionId {latest: yes}", key, {"latest": "yes"}, VBUCKET)
    if out:
        c.eq("PutObjectTagging without VersionId: the answer's VersionId is the latest's", out.get("VersionId"), v2)
    tags_are("VersionId=<version 2> after tagging the latest", key, {"latest": "yes"}, VBUCKET, v2, v2)
    tags_are("VersionId=<version 1> unchanged", key, {"v": "one", "new": "yes"}, VBUCKET, v1, v1)

    out = c.call(f"DeleteObjectTagging {key} VersionId=<version 1>", s3.delete_object_tagging, Bucket=VBUCKET,
                 Key=key, VersionId=v1)
    if out:
        c.eq("DeleteObjectTagging VersionId=<version 1>: HTTP 204", status_of(out), 204)
        c.eq("DeleteObjectTagging VersionId=<version 1>: the answer's VersionId", out.get("VersionId"), v1)
    tags_are("VersionId=<version 1> after DeleteObjectTagging", key, {}, VBUCKET, v1, v1)
    tags_are("VersionId=<version 2> unchanged", key, {"latest": "yes"}, VBUCKET, v2, v2)

    c.call("PutObjectTagging VersionId=<version 1> {old: tags}", s3.put_object_tagging, Bucket=VBUCKET,
           Key=key, VersionId=v1, Tagging={"TagSet": tagset({"old": "tags"})})
    c.call(f"CopyObject {key}@<version 1> -> from-v1.txt (tags copied from that version)", s3.copy_object,
           Bucket=VBUCKET, Key="from-v1.txt", CopySource={"Bucket": VBUCKET, "Key": key, "VersionId": v1})
    tags_are("(copied from version 1)", "from-v1.txt", {"old": "tags"}, VBUCKET)

    fails(f"GetObjectTagging {MISSING} VersionId=<{key}'s version 1>: 404 NoSuchKey or NoSuchVersion",
          ("NoSuchKey", "NoSuchVersion"), 404, s3.get_object_tagging, Bucket=VBUCKET, Key=MISSING, VersionId=v1)

    # ------------------------------------------------------------------ cleanup
    c.step("cleanup: every object and version, then the buckets")
    for bucket in (BUCKET, VBUCKET):
        out = c.call(f"ListObjectVersions {bucket}", s3.list_object_versions, Bucket=bucket) or {}
        objects = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                   for v in out.get("Versions", []) + out.get("DeleteMarkers", [])]
        if objects:
            out = c.call(f"DeleteObjects of the {len(objects)} versions in {bucket}", s3.delete_objects,
                         Bucket=bucket, Delete={"Objects": objects})
            if out:
                c.eq(f"DeleteObjects {bucket}: no Errors", out.get("Errors", []), [])
        c.call(f"DeleteBucket {bucket}", s3.delete_bucket, Bucket=bucket)
    c.finish()


if __name__ == "__main__":
    main()
