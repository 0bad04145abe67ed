"""POST Object (browser form uploads) with boto3's generate_presigned_post and
requests: SigV4 and SigV2 policies, ${filename}, success_action_status and
_redirect, content-length-range, checksums, and every policy violation
refused with S3's error and nothing stored."""

import base64
import hashlib
import json
import os
import re
import time

import requests
from botocore.exceptions import ClientError

from compat import BUCKET, Checks, client, read_file, sha256

MIB = 1 << 20


def code_of(resp):
    m = re.search(r"<Code>([^<]*)</Code>", resp.text)
    return m.group(1) if m else None


def message_of(resp):
    m = re.search(r"<Message>([^<]*)</Message>", resp.text)
    return m.group(1) if m else ""


def post(form, data, filename="file.bin", extra=None, **kwargs):
    """POSTs the presigned form with `data` as its file; fields of `extra` go
    before the file too (they are not in the policy)."""
    fields = dict(form["fields"])
    fields.update(extra or {})
    return requests.post(form["url"], data=fields, files={"file": (filename, data)},
                         allow_redirects=False, timeout=120, **kwargs)


def body_of(s3, key):
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def refused(c, what, resp, status, code, message_part=""):
    c.eq(f"{what}: status", resp.status_code, status)
    c.eq(f"{what}: code", code_of(resp), code)
    if message_part:
        c.check(message_part in message_of(resp), f"{what}: message names it", message_of(resp))


def main():
    c = Checks("post-object")
    s3 = client(signature_version="s3v4")
    s3v2 = client(signature_version="s3")
    c.call(f"CreateBucket {BUCKET}", s3.create_bucket, Bucket=BUCKET)

    c.step("a SigV4 form: the file, its content type and metadata")
    data = b"hello from a browser form\n"
    form = s3.generate_presigned_post(
        BUCKET, "form/hello.txt",
        Fields={"Content-Type": "text/plain", "x-amz-meta-who": "form"},
        Conditions=[{"Content-Type": "text/plain"}, {"x-amz-meta-who": "form"},
                    ["content-length-range", 1, 10 * MIB]],
        ExpiresIn=600)
    resp = post(form, data)
    c.eq("POST: 204 by default", resp.status_code, 204)
    c.eq("POST: ETag is the MD5", resp.headers.get("etag"), '"' + hashlib.md5(data).hexdigest() + '"')
    c.check(resp.headers.get("location", "").endswith(f"/{BUCKET}/form/hello.txt"), "POST: Location",
            resp.headers.get("location"))
    head = c.call("HeadObject", s3.head_object, Bucket=BUCKET, Key="form/hello.txt")
    if head:
        c.eq("content type from the form", head["ContentType"], "text/plain")
        c.eq("metadata from the form", head["Metadata"], {"who": "form"})
    c.eq("bytes read back", c.call("GetObject", body_of, s3, "form/hello.txt"), data)

    c.step("a 20 MiB file streams through")
    big = read_file("20mib.bin")
    form = s3.generate_presigned_post(BUCKET, "form/big.bin",
                                      Conditions=[["content-length-range", 0, 30 * MIB]])
    resp = post(form, big)
    c.eq("POST 20 MiB: status", resp.status_code, 204)
    got = c.call("GetObject 20 MiB", body_of, s3, "form/big.bin")
    c.eq("20 MiB: SHA-256", sha256(got or b""), sha256(big))

    c.step("${filename}, success_action_status 201 and success_action_redirect")
    form = s3.generate_presigned_post(BUCKET, "uploads/${filename}",
                                      Fields={"success_action_status": "201"},
                                      Conditions=[{"success_action_status": "201"}])
    resp = post(form, b"picture", filename="photo.jpg")
    c.eq("201: status", resp.status_code, 201)
    c.check("<Key>uploads/photo.jpg</Key>" in resp.text, "201: PostResponse names the key", resp.text)
    c.check(f"<Bucket>{BUCKET}</Bucket>" in resp.text, "201: and the bucket", resp.text)
    c.eq("${filename} became the file's name", c.call("GetObject", body_of, s3, "uploads/photo.jpg"), b"picture")
    target = "http://app.example/done?from=form"
    form = s3.generate_presigned_post(BUCKET, "form/redirected.txt",
                                      Fields={"success_action_redirect": target},
                                      Conditions=[{"success_action_redirect": target}])
    resp = post(form, b"r")
    c.eq("redirect: 303", resp.status_code, 303)
    location = resp.headers.get("location", "")
    c.check(location.startswith(target + "&") and "key=form%2Fredirected.txt" in location
            and f"bucket={BUCKET}" in location and "etag=" in location,
            "redirect: Location carries bucket, key and ETag", location)

    c.step("a SigV2 form (older SDKs)")
    form = s3v2.generate_presigned_post(BUCKET, "form/v2.txt")
    c.check("AWSAccessKeyId" in form["fields"] and "signature" in form["fields"], "boto3 made a SigV2 form",
            form["fields"])
    resp = post(form, b"version two")
    c.eq("SigV2 POST: status", resp.status_code, 204)
    c.eq("SigV2: bytes read back", c.call("GetObject", body_of, s3, "form/v2.txt"), b"version two")

    c.step("checksum fields")
    data = b"checked"
    good = base64.b64encode(hashlib.sha256(data).digest()).decode()
    form = s3.generate_presigned_post(BUCKET, "form/checked.txt", Fields={"x-amz-checksum-sha256": good},
                                      Conditions=[{"x-amz-checksum-sha256": good}])
    resp = post(form, data)
    c.eq("checksum that matches: status", resp.status_code, 204)
    attrs = c.call("HeadObject with checksum mode", s3.head_object, Bucket=BUCKET, Key="form/checked.txt",
                   ChecksumMode="ENABLED")
    if attrs:
        c.eq("the stored SHA-256 is the form's", attrs.get("ChecksumSHA256"), good)
    form = s3.generate_presigned_post(BUCKET, "form/bad-sum.txt", Fields={"x-amz-checksum-sha256": good},
                                      Conditions=[{"x-amz-checksum-sha256": good}])
    resp = post(form, b"other bytes")
    c.eq("checksum that does not match: 400", resp.status_code, 400)

    c.step("every policy violation is refused, nothing stored")
    form = s3.generate_presigned_post(BUCKET, "form/limited.bin",
                                      Conditions=[["content-length-range", 2, 10]])
    refused(c, "larger than content-length-range", post(form, b"x" * 11), 400, "EntityTooLarge")
    refused(c, "a 1 MiB file past a 10 byte limit", post(form, b"x" * MIB), 400, "EntityTooLarge")
    refused(c, "smaller than content-length-range", post(form, b"x"), 400, "EntityTooSmall")
    form = s3.generate_presigned_post(BUCKET, "uploads/${filename}")
    fields = dict(form["fields"], key="elsewhere/file.bin")
    resp = requests.post(form["url"], data=fields, files={"file": ("f", b"x")}, timeout=60)
    refused(c, "a key outside the policy's starts-with", resp, 403, "AccessDenied", "Policy Condition failed")
    form = s3.generate_presigned_post(BUCKET, "form/plain.txt")
    refused(c, "a field no condition names", post(form, b"x", extra={"x-amz-meta-sneaky": "1"}), 403,
            "AccessDenied", "Extra input fields: x-amz-meta-sneaky")
    c.eq("an x-ignore- field needs no condition", post(form, b"x", extra={"x-ignore-note": "1"}).status_code, 204)
    fields = dict(form["fields"])
    sig = fields["x-amz-signature"]
    fields["x-amz-signature"] = ("0" if sig[0] != "0" else "1") + sig[1:]
    resp = requests.post(form["url"], data=fields, files={"file": ("f", b"x")}, timeout=60)
    refused(c, "a tampered signature", resp, 403, "SignatureDoesNotMatch")
    fields = dict(form["fields"])
    policy = base64.b64decode(fields["policy"]).replace(b"form/plain.txt", b"form/other.txt")
    fields["policy"] = base64.b64encode(policy).decode()
    fields["key"] = "form/other.txt"
    resp = requests.post(form["url"], data=fields, files={"file": ("f", b"x")}, timeout=60)
    refused(c, "a policy changed after signing", resp, 403, "SignatureDoesNotMatch")
    stranger = client(signature_version="s3v4")
    stranger._request_signer._credentials.access_key = "AKIDNOTAUSER00000000"
    form = stranger.generate_presigned_post(BUCKET, "form/stranger.txt")
    refused(c, "an unknown access key", post(form, b"x"), 403, "InvalidAccessKeyId")
    form = s3.generate_presigned_post(BUCKET, "form/expired.txt", ExpiresIn=1)
    time.sleep(2.1)
    refused(c, "an expired policy", post(form, b"x"), 403, "AccessDenied", "Policy expired")
    form = s3.generate_presigned_post(BUCKET, "form/no-file.txt")
    resp = requests.post(form["url"], files={k: (None, v) for k, v in form["fields"].items()}, timeout=60)
    refused(c, "a form without a file", resp, 400, "InvalidArgument")
    resp = requests.post(form["url"], data=b"key=x", timeout=60,
                         headers={"content-type": "application/x-www-form-urlencoded"})
    c.eq("not multipart/form-data: refused", resp.status_code in (400, 412), True)
    resp = requests.post(form["url"], data={"key": "form/anonymous.txt"}, files={"file": ("f", b"x")}, timeout=60)
    refused(c, "an unsigned form to a private bucket", resp, 403, "AccessDenied")
    resp = requests.post(form["url"], data=b"--xyz\r\nnot a form", timeout=60,
                         headers={"content-type": "multipart/form-data; boundary=xyz"})
    refused(c, "a malformed multipart body", resp, 400, "MalformedPOSTRequest")
    refused(c, "a form for one bucket posted to another", requests.post(
        form["url"] + "-other", data=form["fields"], files={"file": ("f", b"x")}, timeout=60), 403, "AccessDenied",
        "Policy Condition failed")
    form = s3.generate_presigned_post(BUCKET + "-missing", "k")
    refused(c, "a bucket that does not exist", post(form, b"x"), 404, "NoSuchBucket")

    c.step("another user's form, and an anonymous form where anyone may write")
    other_file = os.environ.get("POST_OTHER_USER_FILE")
    if other_file:
        with open(other_file) as f:
            keys = json.load(f)
        mallory = client(signature_version="s3v4")
        mallory._request_signer._credentials.access_key = keys["access_key_id"]
        mallory._request_signer._credentials.secret_key = keys["secret_access_key"]
        form = mallory.generate_presigned_post(BUCKET, "form/mallory.txt")
        refused(c, "a form signed by a user who may not write the bucket", post(form, b"x"), 403, "AccessDenied")
    else:
        print("  (no second user on an external endpoint: skipped)")
    open_bucket = BUCKET + "-open"
    c.call("CreateBucket public-read-write", s3.create_bucket, Bucket=open_bucket, ACL="public-read-write")
    url = form["url"].rsplit("/", 1)[0] + "/" + open_bucket
    resp = requests.post(url, data={"key": "anonymous.txt"}, files={"file": ("f", b"anyone")}, timeout=60)
    c.eq("an unsigned form to a public-read-write bucket: 204", resp.status_code, 204)
    c.eq("its bytes", c.call("GetObject", lambda: s3.get_object(Bucket=open_bucket, Key="anonymous.txt")["Body"].read()),
         b"anyone")
    c.call("DeleteObject", s3.delete_object, Bucket=open_bucket, Key="anonymous.txt")
    c.call("DeleteBucket (open)", s3.delete_bucket, Bucket=open_bucket)

    c.step("cleanup")
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        keys += [o["Key"] for o in page.get("Contents", [])]
    want = sorted(["form/hello.txt", "form/big.bin", "uploads/photo.jpg", "form/redirected.txt", "form/v2.txt",
                   "form/checked.txt", "form/plain.txt"])
    c.eq("the bucket holds exactly the accepted uploads", sorted(keys), want)
    if keys:
        c.call("DeleteObjects", s3.delete_objects, Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys]})
    try:
        s3.delete_bucket(Bucket=BUCKET)
    except ClientError as e:
        c.check(False, "DeleteBucket", repr(e))
    c.finish()


if __name__ == "__main__":
    main()
