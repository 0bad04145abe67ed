"""Resume a multipart upload across a server crash, with boto3.

  resume_upload_scenario.py before   create the upload, upload parts 1, 2 and 4,
                                     start part 3 and send half of it, then
                                     SIGKILL the server ($SERVER_PID) mid-part
  resume_upload_scenario.py after    (server restarted on the same port and data
                                     folder) find the upload and its parts again,
                                     upload only the missing ones, complete,
                                     download and compare SHA-1 with the source

With no $SERVER_PID (S3_COMPAT_ENDPOINT), 'before' closes the connection
mid-part instead of killing anything. State passes through $WORK/resume-state.json.
"""

import hashlib
import http.client
import json
import os
import signal
import socket
import sys
import time
from urllib.parse import urlsplit

from compat import BUCKET, Checks, client, composite_crc32, crc32_b64, multipart_etag, quoted_md5

MiB = 1024 * 1024
PART = 5 * MiB
NPARTS = 6
KEY = "resume/30mib.bin"
WORK = os.environ["WORK"]
SRC = os.path.join(WORK, "resume-src.bin")
STATE = os.path.join(WORK, "resume-state.json")
BEFORE = (1, 2, 4)  # acknowledged before the crash
CUT = 3  # in flight when the server dies


def part_bytes(data, number):
    return data[(number - 1) * PART:number * PART]


def send_half_a_part(url, body, kill_pid):
    """PUT with the full Content-Length but only half the body, then crash the server
    (or drop the connection). Returns a description of what the client saw."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.putrequest("PUT", f"{u.path}?{u.query}", skip_accept_encoding=True)
    conn.putheader("Content-Length", str(len(body)))
    conn.endheaders()
    conn.send(body[:len(body) // 2])
    time.sleep(1.0)  # let the server read and stage the first half
    if kill_pid:
        os.kill(kill_pid, signal.SIGKILL)
        print(f"  sent {len(body) // 2} of {len(body)} bytes of part {CUT}; SIGKILL to server pid {kill_pid}")
        try:
            resp = conn.getresponse()
            return f"HTTP {resp.status} {resp.read()[:300]!r}"
        except (http.client.HTTPException, OSError, socket.timeout) as e:
            return f"connection dropped: {e!r}"
        finally:
            conn.close()
    print(f"  sent {len(body) // 2} of {len(body)} bytes of part {CUT}; closing the connection")
    conn.close()
    return "closed by the client"


def before(c):
    s3 = client()
    with open(SRC, "wb") as f:
        f.write(os.urandom(NPARTS * PART))
    with open(SRC, "rb") as f:
        data = f.read()

    c.step(f"create the upload ({NPARTS} x 5 MiB, ChecksumAlgorithm=CRC32) and upload parts {BEFORE}")
    c.call(f"CreateBucket {BUCKET}", s3.create_bucket, Bucket=BUCKET)
    mpu = c.call(f"CreateMultipartUpload {KEY}", s3.create_multipart_upload, Bucket=BUCKET, Key=KEY,
                 ChecksumAlgorithm="CRC32", ContentType="application/x-resume", Metadata={"seed": "resume"})
    if not mpu:
        return
    uid = mpu["UploadId"]
    print(f"  UploadId {uid}")
    acked = {}
    for n in BEFORE:
        body = part_bytes(data, n)
        out = c.call(f"UploadPart {n}", s3.upload_part, Bucket=BUCKET, Key=KEY, UploadId=uid, PartNumber=n,
                     Body=body, ChecksumAlgorithm="CRC32")
        if out:
            c.eq(f"part {n} ETag", out.get("ETag"), quoted_md5(body))
            c.eq(f"part {n} ChecksumCRC32", out.get("ChecksumCRC32"), crc32_b64(body))
            acked[n] = {"ETag": out.get("ETag"), "ChecksumCRC32": out.get("ChecksumCRC32"), "Size": len(body)}
    listed = c.call("ListMultipartUploads", s3.list_multipart_uploads, Bucket=BUCKET)
    initiated = None
    if listed:
        ups = [(u["Key"], u["UploadId"]) for u in listed.get("Uploads", [])]
        c.eq("the upload is listed", ups, [(KEY, uid)])
        if ups:
            initiated = listed["Uploads"][0]["Initiated"].isoformat()
    with open(STATE, "w") as f:
        json.dump({"UploadId": uid, "acked": acked, "initiated": initiated}, f)

    pid = int(os.environ.get("SERVER_PID") or 0)
    c.step(f"part {CUT}: send half of its body, then " + ("SIGKILL the server" if pid else "drop the connection"))
    url = client(signature_version="s3v4").generate_presigned_url(
        "upload_part", Params={"Bucket": BUCKET, "Key": KEY, "UploadId": uid, "PartNumber": CUT}, ExpiresIn=600)
    seen = send_half_a_part(url, part_bytes(data, CUT), pid)
    print(f"  the client saw: {seen}")
    c.check(not seen.startswith("HTTP 2"), f"the cut part {CUT} was not acknowledged", seen)


def after(c):
    s3 = client()
    with open(SRC, "rb") as f:
        data = f.read()
    with open(STATE) as f:
        state = json.load(f)
    uid, acked = state["UploadId"], {int(k): v for k, v in state["acked"].items()}

    c.step("after the restart: the upload and exactly the acknowledged parts are still there")
    listed = c.call("ListMultipartUploads", s3.list_multipart_uploads, Bucket=BUCKET)
    if listed:
        ups = listed.get("Uploads", [])
        c.eq("ListMultipartUploads shows the upload", [(u["Key"], u["UploadId"]) for u in ups], [(KEY, uid)])
        if ups and state["initiated"]:
            c.eq("Initiated is unchanged", ups[0]["Initiated"].isoformat(), state["initiated"])
    parts, pages = [], 0
    try:
        for page in s3.get_paginator("list_parts").paginate(Bucket=BUCKET, Key=KEY, UploadId=uid,
                                                            PaginationConfig={"PageSize": 2}):
            pages += 1
            parts += page.get("Parts", [])
            if pages == 1:
                c.eq("ListParts ChecksumAlgorithm", page.get("ChecksumAlgorithm"), "CRC32")
        c.check(True, f"ListParts paged by 2 (part-number-marker): {pages} pages")
    except Exception as e:  # noqa: BLE001
        c.check(False, "ListParts paged by 2 (part-number-marker)", repr(e))
    got = {p["PartNumber"]: {"ETag": p.get("ETag"), "ChecksumCRC32": p.get("ChecksumCRC32"), "Size": p.get("Size")}
           for p in parts}
    c.eq("part numbers: exactly the acknowledged ones (the cut part is absent)", sorted(got), sorted(acked))
    c.eq("no part listed twice", len(parts), len(got))
    c.eq("ETags, sizes and CRC32s are the ones acknowledged before the crash", got, acked)

    missing = [n for n in range(1, NPARTS + 1) if n not in got]
    c.step(f"upload only the missing parts {missing}, then complete")
    done = dict(got)
    for n in missing:
        body = part_bytes(data, n)
        out = c.call(f"UploadPart {n}", s3.upload_part, Bucket=BUCKET, Key=KEY, UploadId=uid, PartNumber=n,
                     Body=body, ChecksumAlgorithm="CRC32")
        if out:
            c.eq(f"part {n} ETag", out.get("ETag"), quoted_md5(body))
            done[n] = {"ETag": out.get("ETag"), "ChecksumCRC32": out.get("ChecksumCRC32"), "Size": len(body)}
    out = c.call("CompleteMultipartUpload (ETags + part CRC32s)", s3.complete_multipart_upload,
                 Bucket=BUCKET, Key=KEY, UploadId=uid,
                 MultipartUpload={"Parts": [{"PartNumber": n, "ETag": done[n]["ETag"],
                                             "ChecksumCRC32": done[n]["ChecksumCRC32"]} for n in sorted(done)]})
    if out:
        c.eq("Complete ETag = md5(part MD5s)-6", out.get("ETag"), multipart_etag(data, PART))
    head = c.call("HeadObject ChecksumMode=ENABLED", s3.head_object, Bucket=BUCKET, Key=KEY, ChecksumMode="ENABLED")
    if head:
        c.eq("ContentLength", head.get("ContentLength"), len(data))
        c.eq("ContentType from Create (before the crash)", head.get("ContentType"), "application/x-resume")
        c.eq("Metadata from Create", head.get("Metadata"), {"seed": "resume"})
        c.eq("ChecksumCRC32 composite over the 6 parts", head.get("ChecksumCRC32"), composite_crc32(data, PART))
    dst = os.path.join(WORK, "resume-download.bin")
    if c.ran("download_file", s3.download_file, BUCKET, KEY, dst):
        with open(dst, "rb") as f:
            got_bytes = f.read()
        c.eq("downloaded SHA-1 equals the source's", hashlib.sha1(got_bytes).hexdigest(), hashlib.sha1(data).hexdigest())
        c.eq("downloaded size", len(got_bytes), len(data))
    listed = c.call("ListMultipartUploads after complete", s3.list_multipart_uploads, Bucket=BUCKET)
    if listed:
        c.eq("no upload left", listed.get("Uploads", []), [])

    c.step("cleanup")
    c.call(f"DeleteObject {KEY}", s3.delete_object, Bucket=BUCKET, Key=KEY)
    c.call(f"DeleteBucket {BUCKET}", s3.delete_bucket, Bucket=BUCKET)


def main():
    phase = sys.argv[1]
    c = Checks(f"resume-upload ({phase})")
    {"before": before, "after": after}[phase](c)
    c.finish()


if __name__ == "__main__":
    main()
