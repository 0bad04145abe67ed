"""Presigned URLs made by boto3 (SigV2 default, SigV4) and used with curl."""

import os
import re
import subprocess
import time

from compat import (
    BUCKET,
    HOSTILE_KEYS,
    SIZE_FILES,
    Checks,
    byte_sorted,
    client,
    hostile_content,
    read_file,
    sha256,
)

WORK = os.environ.get("WORK", "/tmp")


def curl(url, *args, body_file=None):
    """Run curl; returns (status, headers dict lowercased, body bytes)."""
    out = os.path.join(WORK, "curl.body")
    hdr = os.path.join(WORK, "curl.headers")
    cmd = ["curl", "-sS", "--path-as-is", "-o", out, "-D", hdr, "-w", "%{http_code}", *args]
    if body_file is not None:
        cmd += ["-T", body_file]
    cmd.append(url)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise RuntimeError(f"curl exit {res.returncode}: {res.stderr}")
    headers = {}
    with open(hdr, encoding="latin-1") as f:
        for line in f:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
    body = b""
    if os.path.exists(out):
        with open(out, "rb") as f:
            body = f.read()
        os.remove(out)
    return int(res.stdout), headers, body


def s3_error_code(body):
    m = re.search(rb"<Code>([^<]*)</Code>", body)
    return m.group(1).decode() if m else None


def tamper(url, param):
    """The same URL with the first character of one query parameter's value changed."""
    def flip(m):
        # A different character of the same alphabet: for a hex SigV4
        # signature a different lowercase digit, never the same digit in
        # another case.
        return m.group(1) + ("b" if m.group(2) != "b" else "c")
    tampered, n = re.subn(rf"([?&]{param}=)(.)", flip, url, count=1)
    assert n == 1, f"{param} not in {url}"
    return tampered


def main():
    c = Checks("presigned")
    s3 = client()
    v2 = client()  # botocore presigns with SigV2 ('s3-query') by default
    v4 = client(signature_version="s3v4")
    flavours = [("SigV2", v2, "Signature"), ("SigV4", v4, "X-Amz-Signature")]

    c.step("setup with boto3: bucket and objects (sizes + hostile keys)")
    c.call(f"CreateBucket {BUCKET}", s3.create_bucket, Bucket=BUCKET)
    expected = {}
    for name in SIZE_FILES:
        expected[f"sizes/{name}"] = read_file(name)
    for key in HOSTILE_KEYS:
        expected[key] = hostile_content(key)
    for key, data in expected.items():
        c.call(f"PutObject [{key}] ({len(data)} B)", s3.put_object, Bucket=BUCKET, Key=key, Body=data)
    big = expected["sizes/20mib.bin"]

    for flavour, signer, sig_param in flavours:
        c.step(f"{flavour} presigned GET with curl, every object")
        url = signer.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "sizes/one.bin"},
                                            ExpiresIn=300)
        print(f"  example URL: {url}")
        if flavour == "SigV2":
            c.check("AWSAccessKeyId=" in url and "Signature=" in url and "Expires=" in url,
                    "default presigned URL is SigV2 (AWSAccessKeyId, Signature, Expires)", url)
        else:
            c.check("X-Amz-Algorithm=AWS4-HMAC-SHA256" in url, "s3v4 presigned URL is SigV4", url)
        for key, data in expected.items():
            url = signer.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": key},
                                                ExpiresIn=300)
            got = c.call(f"{flavour} GET [{key}]", curl, url)
            if got:
                status, _, body = got
                c.eq(f"{flavour} GET [{key}]: status", status, 200)
                c.eq(f"{flavour} GET [{key}]: sha256 ({len(data)} B)", sha256(body), sha256(data))

        c.step(f"{flavour} presigned GET with a Range header, and HEAD")
        url = signer.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "sizes/20mib.bin"},
                                            ExpiresIn=300)
        got = c.call(f"{flavour} GET Range bytes=100-1048675", curl, url, "-r", "100-1048675")
        if got:
            status, headers, body = got
            c.eq(f"{flavour} range: status", status, 206)
            c.eq(f"{flavour} range: bytes", sha256(body), sha256(big[100:1048676]))
            c.eq(f"{flavour} range: Content-Range", headers.get("content-range"),
                 f"bytes 100-1048675/{len(big)}")
        url = signer.generate_presigned_url("head_object", Params={"Bucket": BUCKET, "Key": "sizes/20mib.bin"},
                                            ExpiresIn=300)
        got = c.call(f"{flavour} HEAD sizes/20mib.bin", curl, url, "-I")
        if got:
            status, headers, _ = got
            c.eq(f"{flavour} HEAD: status", status, 200)
            c.eq(f"{flavour} HEAD: Content-Length", headers.get("content-length"), str(len(big)))

        c.step(f"{flavour} presigned PUT with curl -T")
        for name in ("empty.bin", "one.bin", "20mib.bin"):
            key = f"presigned-put/{flavour}/{name}"
            path = os.path.join(os.environ["FILES_DIR"], name)
            url = signer.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": key},
                                                ExpiresIn=300)
            got = c.call(f"{flavour} PUT {key} ({os.path.getsize(path)} B)", curl, url, body_file=path)
            if got:
                c.eq(f"{flavour} PUT {key}: status", got[0], 200)
            out = c.call(f"GetObject {key} (boto3)", s3.get_object, Bucket=BUCKET, Key=key)
            if out:
                c.eq(f"{key}: sha256", sha256(out["Body"].read()), sha256(read_file(name)))
        key = f"presigned-put/{flavour}/é 日本 +&=.txt"
        body_path = os.path.join(WORK, "hostile-put.txt")
        with open(body_path, "wb") as f:
            f.write(hostile_content(key))
        url = signer.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": key},
                                            ExpiresIn=300)
        got = c.call(f"{flavour} PUT [{key}]", curl, url, body_file=body_path)
        if got:
            c.eq(f"{flavour} PUT [{key}]: status", got[0], 200)
        out = c.call(f"GetObject [{key}] (boto3)", s3.get_object, Bucket=BUCKET, Key=key)
        if out:
            c.eq(f"[{key}]: bytes", out["Body"].read(), hostile_content(key))

        c.step(f"{flavour} presigned PUT with a signed Content-Type")
        key = f"presigned-put/{flavour}/typed.txt"
        url = signer.generate_presigned_url(
            "put_object", Params={"Bucket": BUCKET, "Key": key, "ContentType": "text/x-tessera"},
            ExpiresIn=300)
        got = c.call(f"{flavour} PUT {key} with the signed Content-Type", curl, url,
                     "-H", "Content-Type: text/x-tessera", body_file=body_path)
        if got:
            c.eq(f"{flavour} PUT typed: status", got[0], 200)
        out = c.call(f"HeadObject {key}", s3.head_object, Bucket=BUCKET, Key=key)
        if out:
            c.eq(f"{key}: ContentType", out.get("ContentType"), "text/x-tessera")
        got = c.call(f"{flavour} PUT {key} with another Content-Type", curl, url,
                     "-H", "Content-Type: text/other", body_file=body_path)
        if got:
            c.eq(f"{flavour} wrong Content-Type: status", got[0], 403)
            c.eq(f"{flavour} wrong Content-Type: code", s3_error_code(got[2]), "SignatureDoesNotMatch")

        c.step(f"{flavour} rejected URLs: tampered signature, expired")
        url = signer.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "sizes/one.bin"},
                                            ExpiresIn=300)
        got = c.call(f"{flavour} GET with a tampered signature", curl, tamper(url, sig_param))
        if got:
            c.eq(f"{flavour} tampered: status", got[0], 403)
            c.eq(f"{flavour} tampered: code", s3_error_code(got[2]), "SignatureDoesNotMatch")
        url_other_key = url.replace("sizes/one.bin", "sizes/5mib.bin")
        got = c.call(f"{flavour} GET of another key with the same signature", curl, url_other_key)
        if got:
            c.eq(f"{flavour} other key: status", got[0], 403)
            c.eq(f"{flavour} other key: code", s3_error_code(got[2]), "SignatureDoesNotMatch")
        url = signer.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "sizes/one.bin"},
                                            ExpiresIn=1)
        time.sleep(2.5)
        got = c.call(f"{flavour} GET after expiry (ExpiresIn=1)", curl, url)
        if got:
            c.eq(f"{flavour} expired: status", got[0], 403)
            c.eq(f"{flavour} expired: code", s3_error_code(got[2]), "AccessDenied")

    c.step("anonymous requests are refused")
    got = c.call("anonymous GET", curl, f"{s3.meta.endpoint_url}/{BUCKET}/sizes/one.bin")
    if got:
        c.eq("anonymous GET: status", got[0], 403)
        c.eq("anonymous GET: code", s3_error_code(got[2]), "AccessDenied")
    got = c.call("anonymous PUT", curl, f"{s3.meta.endpoint_url}/{BUCKET}/anonymous.txt",
                 body_file=os.path.join(os.environ["FILES_DIR"], "one.bin"))
    if got:
        c.eq("anonymous PUT: status", got[0], 403)

    c.step("cleanup with boto3")
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        keys += [o["Key"] for o in page.get("Contents", [])]
    want = byte_sorted(
        list(expected)
        + [f"presigned-put/{f}/{n}" for f, _, _ in flavours
           for n in ("empty.bin", "one.bin", "20mib.bin", "é 日本 +&=.txt", "typed.txt")]
    )
    c.eq("bucket holds exactly the uploaded keys (nothing from refused requests)", keys, want)
    if keys:
        c.call("DeleteObjects", s3.delete_objects, Bucket=BUCKET,
               Delete={"Objects": [{"Key": k} for k in keys]})
    c.call(f"DeleteBucket {BUCKET}", s3.delete_bucket, Bucket=BUCKET)
    c.finish()


if __name__ == "__main__":
    main()
