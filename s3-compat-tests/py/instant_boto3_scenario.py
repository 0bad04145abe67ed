"""Instant upload (秒传), seen from real clients: boto3, aws-cli v2, curl and a
raw socket, through a byte-counting TCP proxy (see README.md).

What the server documents: a PutObject or UploadPart that sends
`Expect: 100-continue` and declares its content's SHA-256 (a hex
x-amz-content-sha256, or x-amz-checksum-sha256) and size before the body is
answered at once with the final 200 (the ETag, checksum and version id the
bytes would have given, plus `x-tessera-instant-upload: true` and
`connection: close`), without reading the body, when the requesting user
already holds that content: one of their own objects, versions or upload parts
references it (root holds everything). Otherwise the server sends 100 Continue
and reads the body (the content is still stored once). Only bodies stored as
files (over 32 KiB) are indexed, the requested checksum algorithm must be the
one the held content was stored with (SHA-256 always works), and anonymous
requests are never instant.

Every client talks to the server through CountingProxy (127.0.0.1 only): it
forwards both directions byte for byte and counts what each client sends on
each connection, so "the body was not sent" is measured, not inferred. Storage
is measured with `tessera stats --json` on the running server's data folder.

1. boto3 put_object (file bodies: botocore adds Expect: 100-continue) with
   ChecksumAlgorithm SHA256 of an 8 MiB file: alice's first upload sends the
   body; the same file again under other keys, in another bucket and twice in
   a versioned bucket is instant (tiny byte count, the header, the MD5 ETag,
   the SHA-256, a version id), reads back byte-exact, and stored_bytes does
   not grow while logical_bytes does. An instant PUT with If-None-Match: * on
   an existing key is refused (412); one into bob's bucket is AccessDenied.
   Root (who may read everything) is instant too.
2. aws-cli v2 `aws s3 cp` of a 6 MiB file to two keys (--debug shows whether
   it saw 100 Continue), and of a 24 MiB file in 8 MiB parts to two keys:
   the second copy sends far fewer bytes than the file (each part instant),
   both read back byte-exact, stored_bytes grows once.
3. boto3 multipart with ChecksumAlgorithm SHA256 (BytesIO part bodies: botocore
   adds Expect for any file-like body): parts 1-2 of an upload left
   unfinished make parts 1-2 of a new upload instant (a resumed upload); a
   third upload of the same file is instant for every part and completes with
   the same ETag and composite checksum; a part's content put as an object,
   and an object's content sent as a part, are instant too.
4. Raw HTTP: a SigV4-signed PUT on a raw socket with only a hex
   x-amz-content-sha256 gets the final 200 as its first answer (no
   100 Continue), the body is never sent, and the server closes the
   connection; the same request from a user who does not hold the content gets
   100 Continue. curl --aws-sigv4 with Expect and x-amz-checksum-sha256 is
   instant too (no body sent).
5. bob sending alice's content: not instant (the whole body is sent), stored
   once (dedup); his next upload of it is instant. carol declaring alice's
   SHA-256 but sending other bytes of the same size gets 100 Continue (no hint
   that the content exists), then BadDigest / XAmzContentSHA256Mismatch, and
   no object. An anonymous PUT is never instant.
6. Once alice deleted her copies, she is no longer instant (bob still is);
   once every copy is deleted, the next upload sends its body and is stored
   anew; everything deleted: stats back to the baseline.
"""

import base64
import hashlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import boto3
import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from compat import Checks, error_code, multipart_etag, quoted_md5

KiB = 1024
MiB = 1024 * KiB
WORK = os.environ["WORK"]
DATA = os.environ["INSTANT_DATA"]
TESSERA_BIN = os.environ["TESSERA_BIN"]
AWS_BIN = os.environ.get("AWS_BIN", "/usr/bin/aws")
SERVER = urllib.parse.urlsplit(os.environ["ENDPOINT"])
INSTANT = "x-tessera-instant-upload"
# An instant answer means the client sent its request head only: a few KiB at
# most. A request counts as instant below min(TINY, a quarter of its body).
TINY = 64 * KiB
FIELDS = ("objects", "noncurrent_versions", "upload_parts", "logical_bytes", "stored_bytes", "distinct_blobs")

A, A2, AVER, AOPEN = "inst-alice", "inst-alice-2", "inst-alice-versioned", "inst-alice-open"
BOB, CAROL, ROOT = "inst-bob", "inst-carol", "inst-root"


# ---------------------------------------------------------------------- the proxy
class Conn:
    """One proxied connection: bytes each way, and which side closed first."""

    def __init__(self, number):
        self.number = number
        self.up = 0          # client -> server, as read from the client
        self.down = 0        # server -> client
        self.dropped = 0     # client bytes the server was gone for (not delivered)
        self.first_eof = None  # "server" or "client"
        self.done = threading.Event()


class CountingProxy:
    """A TCP proxy on 127.0.0.1 that forwards both directions unchanged and
    counts the bytes each client sends. When the server closes (an instant
    answer carries `connection: close`), the client sees the close too."""

    def __init__(self, host, port):
        self.target = (host, port)
        self.lock = threading.Lock()
        self.up = 0
        self.conns = []
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                conn = Conn(len(self.conns) + 1)
                self.conns.append(conn)
            threading.Thread(target=self._serve, args=(client, conn), daemon=True).start()

    def _serve(self, client, conn):
        try:
            server = socket.create_connection(self.target, timeout=30)
        except OSError:
            client.close()
            conn.done.set()
            return
        for s in (client, server):
            s.settimeout(None)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        down = threading.Thread(target=self._server_to_client, args=(server, client, conn), daemon=True)
        down.start()
        self._client_to_server(client, server, conn)
        down.join()
        client.close()
        server.close()
        conn.done.set()

    def _eof(self, conn, side):
        with self.lock:
            if conn.first_eof is None:
                conn.first_eof = side

    def _client_to_server(self, client, server, conn):
        server_gone = False
        while True:
            try:
                data = client.recv(256 * KiB)
            except OSError:
                data = b""
            if not data:
                self._eof(conn, "client")
                try:
                    server.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            with self.lock:
                conn.up += len(data)
                self.up += len(data)
            if server_gone:
                conn.dropped += len(data)
                continue
            try:
                server.sendall(data)
            except OSError:
                # The server closed: keep reading (and counting) what the client
                # still sends until it closes too.
                server_gone = True
                conn.dropped += len(data)

    def _server_to_client(self, server, client, conn):
        while True:
            try:
                data = server.recv(256 * KiB)
            except OSError:
                data = b""
            if not data:
                self._eof(conn, "server")
                try:
                    client.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            conn.down += len(data)
            try:
                client.sendall(data)
            except OSError:
                return

    def mark(self):
        with self.lock:
            return self.up, len(self.conns)

    def since(self, mark):
        """(client bytes sent since MARK, the connections opened since)."""
        with self.lock:
            return self.up - mark[0], self.conns[mark[1]:]

    def close(self):
        self.listener.close()


# ---------------------------------------------------------------------- helpers
def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def sha256_b64(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def size_str(n):
    return f"{n // MiB} MiB" if n and n % MiB == 0 else f"{n} B"


def write_random(name, size):
    path = os.path.join(WORK, name)
    data = os.urandom(size)
    with open(path, "wb") as f:
        f.write(data)
    return path, data


def s3_client(endpoint, keys=None, unsigned=False):
    # total_max_attempts 1: a retry would send the body again and spoil the count.
    cfg = dict(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1},
               connect_timeout=10, read_timeout=60)
    if unsigned:
        cfg["signature_version"] = botocore.UNSIGNED
    creds = {}
    if keys:
        creds = dict(aws_access_key_id=keys["access_key_id"], aws_secret_access_key=keys["secret_access_key"])
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=Config(**cfg), **creds)


def stats():
    """`tessera stats --data DATA --json` (through the running server)."""
    out = subprocess.run([TESSERA_BIN, "stats", "--data", DATA, "--json"], env=os.environ,
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"tessera stats exited {out.returncode}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def blob_files():
    count = size = 0
    for root, _, files in os.walk(os.path.join(DATA, "blobs")):
        for name in files:
            try:
                size += os.stat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                continue
            count += 1
    return count, size


def headers_of(out):
    return (out or {}).get("ResponseMetadata", {}).get("HTTPHeaders", {})


class RawResponse:
    def __init__(self, status, reason, headers, body=b""):
        self.status, self.reason, self.headers, self.body = status, reason, headers, body

    def code(self):
        m = re.search(rb"<Code>([^<]*)</Code>", self.body)
        return m.group(1).decode() if m else None


class RawConn:
    """HTTP/1.1 by hand on a socket, to see exactly what the server answers
    before the body and whether it closes the connection."""

    def __init__(self, port, timeout=15):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.sent = 0

    def send(self, data):
        self.sock.sendall(data)
        self.sent += len(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed by the peer")
        self.buf += chunk

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        _, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return RawResponse(int(status), reason, headers)

    def read_response(self):
        """The next response; 1xx answers are returned as they come."""
        resp = self.read_head()
        if resp.status >= 200:
            length = int(resp.headers.get("content-length", "0"))
            while len(self.buf) < length:
                self._fill()
            resp.body, self.buf = self.buf[:length], self.buf[length:]
        return resp

    def closed_by_peer(self, wait=5.0):
        """True if the peer closes the connection within WAIT seconds (EOF)."""
        self.sock.settimeout(wait)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (socket.timeout, TimeoutError):
            return False
        except ConnectionResetError:
            return True

    def close(self):
        self.sock.close()


def signed_head(method, port, path, keys, headers):
    """The request head of METHOD PATH signed with SigV4 for KEYS (None:
    anonymous). An x-amz-content-sha256 in HEADERS is the signed payload hash."""
    url = f"http://127.0.0.1:{port}{path}"
    req = AWSRequest(method=method, url=url, headers=dict(headers))
    if keys:
        SigV4Auth(Credentials(keys["access_key_id"], keys["secret_access_key"]), "s3", "us-east-1").add_auth(req)
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v.decode() if isinstance(v, bytes) else v}" for k, v in req.headers.items()
              if k.lower() != "host"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# ---------------------------------------------------------------------- the scenario
def main():
    c = Checks("instant-boto3")
    with open(os.environ["INSTANT_USERS_FILE"]) as f:
        users = json.load(f)
    alice_keys, bob_keys, carol_keys = users["alice"], users["bob"], users["carol"]
    root_keys = {"access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
                 "secret_access_key": os.environ["AWS_SECRET_ACCESS_KEY"]}

    proxy = CountingProxy(SERVER.hostname, SERVER.port)
    ep = proxy.endpoint
    alice, bob, carol = s3_client(ep, alice_keys), s3_client(ep, bob_keys), s3_client(ep, carol_keys)
    root = s3_client(ep, root_keys)
    print(f"boto3 {boto3.__version__} / botocore {botocore.__version__}; server {SERVER.geturl()}, "
          f"clients go through the counting proxy {ep}")
    numbers = []  # (what, body size, bytes sent first, bytes sent again) for the summary

    def snapshot(what):
        try:
            st = stats()
        except Exception as e:  # noqa: BLE001
            c.check(False, f"tessera stats --json ({what})", repr(e))
            return None
        print(f"  stats ({what}): " + ", ".join(f"{f}={st.get(f)}" for f in FIELDS))
        return st

    def grew(what, before, after, **deltas):
        if before is None or after is None:
            c.check(False, f"{what}: stats available")
            return
        for field, delta in deltas.items():
            shown = size_str(abs(delta)) if field.endswith("bytes") else str(abs(delta))
            c.eq(f"{what}: {field} {'-' if delta < 0 else '+'}{shown}", after[field] - before[field], delta)

    def sent_check(what, sent, size, instant):
        if instant:
            limit = min(TINY, size // 4)
            c.check(sent < limit, f"{what}: the client sent {sent} B, far less than the {size_str(size)} body "
                                  f"(< {size_str(limit) if limit % KiB else f'{limit // KiB} KiB'}: "
                                  "the body was not sent)")
        else:
            c.check(sent >= size, f"{what}: the client sent {sent} B, the whole {size_str(size)} body and more")

    def header_check(what, hdrs, instant):
        if instant:
            c.eq(f"{what}: {INSTANT}: true", hdrs.get(INSTANT), "true")
        else:
            c.eq(f"{what}: no {INSTANT} header (the body was read)", hdrs.get(INSTANT), None)

    def put(who, s3, bucket, key, path, data, instant, **extra):
        """boto3 put_object from an open file (Expect: 100-continue), SHA-256
        checksum unless EXTRA says otherwise. Returns (response, bytes sent)."""
        extra.setdefault("ChecksumAlgorithm", "SHA256")
        what = f"{who} put_object {bucket}/{key}"
        mark = proxy.mark()
        with open(path, "rb") as f:
            out = c.call(f"{what} ({size_str(len(data))}, open file, {extra})", s3.put_object,
                         Bucket=bucket, Key=key, Body=f, **extra)
        sent, _ = proxy.since(mark)
        if out is None:
            return None, sent
        hdrs = headers_of(out)
        print(f"  {what}: sent {sent} B for a {len(data)} B body; {INSTANT}: {hdrs.get(INSTANT)}; "
              f"connection: {hdrs.get('connection')}")
        header_check(what, hdrs, instant)
        sent_check(what, sent, len(data), instant)
        if instant:
            c.eq(f"{what}: connection: close", hdrs.get("connection"), "close")
        c.eq(f"{what}: ETag is the MD5", out.get("ETag"), quoted_md5(data))
        if extra.get("ChecksumAlgorithm") == "SHA256":
            c.eq(f"{what}: ChecksumSHA256 is the body's", out.get("ChecksumSHA256"), sha256_b64(data))
        return out, sent

    def reads_back(who, s3, bucket, key, data, etag=None, **extra):
        what = f"{who} get_object {bucket}/{key}{' ' + str(extra) if extra else ''}"
        out = c.call(what, s3.get_object, Bucket=bucket, Key=key, **extra)
        if out:
            body = out["Body"].read()
            c.eq(f"{what}: {size_str(len(data))}, byte-exact (SHA-256), ETag",
                 (len(body), sha256_hex(body), out.get("ETag")), (len(data), sha256_hex(data), etag or quoted_md5(data)))

    def disk_matches_stats(what, st):
        if st is None:
            return
        want = (st["distinct_blobs"], st["stored_bytes"])
        start = time.monotonic()
        files = blob_files()
        while files != want and time.monotonic() < start + 10:
            time.sleep(0.05)
            files = blob_files()
        c.eq(f"{what}: files under blobs/ (count, bytes) = stats' (distinct_blobs, stored_bytes)", files, want)

    # ------------------------------------------------------------------ setup
    c.step("buckets: alice 4 (one versioned, one public-read-write), bob 1, carol 1, root 1")
    for s3, b, extra in ((alice, A, {}), (alice, A2, {}), (alice, AVER, {}), (alice, AOPEN, {"ACL": "public-read-write"}),
                         (bob, BOB, {}), (carol, CAROL, {}), (root, ROOT, {})):
        c.call(f"create_bucket {b} {extra or ''}", s3.create_bucket, Bucket=b, **extra)
    c.call(f"put_bucket_versioning {AVER} Enabled", alice.put_bucket_versioning, Bucket=AVER,
           VersioningConfiguration={"Status": "Enabled"})
    base = snapshot("baseline")

    x_path, x = write_random("x-8mib.bin", 8 * MiB)
    x_copies = []  # (client, bucket, key, version id or None): every object/version holding X

    # ------------------------------------------------------------------ 1. boto3 put_object
    c.step("1. boto3 put_object, ChecksumAlgorithm SHA256, an 8 MiB file (open(path, 'rb'): Expect: 100-continue)")
    sent_headers = []
    alice.meta.events.register("before-send.s3.PutObject",
                               lambda request, **_: sent_headers.append(dict(request.headers)))
    before = snapshot("before")
    out, first_sent = put("alice", alice, A, "x/first.bin", x_path, x, instant=False)
    if sent_headers:
        h = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in sent_headers[-1].items()}
        print(f"  botocore sent: expect={h.get('expect')}, x-amz-content-sha256={h.get('x-amz-content-sha256', '')[:16]}…,"
              f" x-amz-checksum-sha256={h.get('x-amz-checksum-sha256')}")
        c.eq("botocore sent Expect: 100-continue for the file body", h.get("expect"), "100-continue")
        c.eq("botocore declared the hex SHA-256 in x-amz-content-sha256", h.get("x-amz-content-sha256"), sha256_hex(x))
    after = snapshot("after alice's first upload")
    grew("alice's first upload", before, after, objects=1, logical_bytes=8 * MiB, stored_bytes=8 * MiB,
         distinct_blobs=1)
    x_copies.append((alice, A, "x/first.bin", None))

    before = after
    out, again_sent = put("alice", alice, A, "x/second.bin", x_path, x, instant=True)
    numbers.append(("boto3 put_object 8 MiB", 8 * MiB, first_sent, again_sent))
    x_copies.append((alice, A, "x/second.bin", None))
    put("alice", alice, A2, "x/third.bin", x_path, x, instant=True)
    x_copies.append((alice, A2, "x/third.bin", None))
    versions = []
    for n in (1, 2):
        out, _ = put("alice", alice, AVER, "x/versioned.bin", x_path, x, instant=True)
        vid = (out or {}).get("VersionId")
        c.check(bool(vid) and vid != "null", f"instant put #{n} into the versioned bucket: a VersionId ({vid})")
        versions.append(vid)
        x_copies.append((alice, AVER, "x/versioned.bin", vid))
    c.check(len(set(versions)) == 2, "the two instant versions have distinct version ids", versions)
    after = snapshot("after 4 instant uploads")
    grew("4 instant uploads (2 of them versions of one key)", before, after, objects=3, noncurrent_versions=1,
         logical_bytes=4 * 8 * MiB, stored_bytes=0, distinct_blobs=0)
    lv = c.call(f"list_object_versions {AVER}", alice.list_object_versions, Bucket=AVER)
    if lv:
        c.eq("list_object_versions: the two versions, newest first, as IsLatest",
             [(v["VersionId"], v["IsLatest"], v["Size"], v["ETag"]) for v in lv.get("Versions", [])],
             [(versions[1], True, 8 * MiB, quoted_md5(x)), (versions[0], False, 8 * MiB, quoted_md5(x))])
    for b, k in ((A, "x/second.bin"), (A2, "x/third.bin"), (AVER, "x/versioned.bin")):
        reads_back("alice", alice, b, k, x)
    if len(versions) == 2 and all(versions):
        reads_back("alice", alice, AVER, "x/versioned.bin", x, VersionId=versions[0])
    head = c.call(f"head_object {A}/x/second.bin ChecksumMode=ENABLED", alice.head_object, Bucket=A,
                  Key="x/second.bin", ChecksumMode="ENABLED")
    if head:
        c.eq("head_object of the instant copy: size, ETag, ChecksumSHA256",
             (head.get("ContentLength"), head.get("ETag"), head.get("ChecksumSHA256")),
             (8 * MiB, quoted_md5(x), sha256_b64(x)))

    c.step("1a. the same key again with the same content (a client uploading a file it sent before)")
    before = snapshot("before")
    put("alice", alice, A, "x/second.bin", x_path, x, instant=True)
    after = snapshot("after")
    grew("x/second.bin replaced by the same content", before, after, objects=0, logical_bytes=0, stored_bytes=0,
         distinct_blobs=0)
    reads_back("alice", alice, A, "x/second.bin", x)
    disk_matches_stats("after replacing x/second.bin by itself", after)

    c.step("1b. an instant PUT is still a PUT: conditions, permissions; root holds everything")
    before = snapshot("before")
    mark = proxy.mark()
    with open(x_path, "rb") as f:
        c.error("alice put_object x/second.bin IfNoneMatch='*' (the key exists): PreconditionFailed",
                "PreconditionFailed", alice.put_object, Bucket=A, Key="x/second.bin", Body=f,
                ChecksumAlgorithm="SHA256", IfNoneMatch="*")
    sent, _ = proxy.since(mark)
    print(f"  (sent {sent} B)")
    with open(x_path, "rb") as f:
        c.error(f"alice put_object into bob's bucket {BOB} (she holds the content): AccessDenied", "AccessDenied",
                alice.put_object, Bucket=BOB, Key="from-alice.bin", Body=f, ChecksumAlgorithm="SHA256")
    c.error(f"bob head_object {BOB}/from-alice.bin: nothing was stored (404)", "404", bob.head_object, Bucket=BOB,
            Key="from-alice.bin")
    after = snapshot("after the refused PUTs")
    grew("the refused PUTs store nothing", before, after, objects=0, logical_bytes=0, stored_bytes=0)
    out, root_sent = put("root", root, ROOT, "x.bin", x_path, x, instant=True)
    x_copies.append((root, ROOT, "x.bin", None))
    reads_back("root", root, ROOT, "x.bin", x)

    c.step("1c. an instant PUT keeps what its headers ask: Content-Type, metadata, tags, a canned ACL")
    put("alice", alice, A, "x/meta.bin", x_path, x, instant=True, ContentType="text/x-instant",
        Metadata={"color": "teal"}, Tagging="kind=instant", ACL="public-read")
    x_copies.append((alice, A, "x/meta.bin", None))
    head = c.call(f"head_object {A}/x/meta.bin", alice.head_object, Bucket=A, Key="x/meta.bin")
    if head:
        c.eq("head_object x/meta.bin: ContentType, Metadata, ContentLength",
             (head.get("ContentType"), head.get("Metadata"), head.get("ContentLength")),
             ("text/x-instant", {"color": "teal"}, 8 * MiB))
    tags = c.call(f"get_object_tagging {A}/x/meta.bin", alice.get_object_tagging, Bucket=A, Key="x/meta.bin")
    if tags:
        c.eq("get_object_tagging x/meta.bin", tags.get("TagSet"), [{"Key": "kind", "Value": "instant"}])
    reads_back("anonymous (ACL public-read)", s3_client(ep, unsigned=True), A, "x/meta.bin", x)

    c.step("1d. the size limit: a 32 KiB body is stored inline, never instant; 32 KiB + 1 B is a file, instant")
    for size, instant in ((32 * KiB, False), (32 * KiB + 1, True)):
        path, data = write_random(f"small-{size}.bin", size)
        _, first_sent = put("alice", alice, A, f"small/{size}-1.bin", path, data, instant=False)
        _, sent = put("alice", alice, A, f"small/{size}-2.bin", path, data, instant=instant)
        numbers.append((f"boto3 put_object {size} B", size, first_sent, sent))

    # ------------------------------------------------------------------ 2. aws-cli v2
    c.step(f"2. aws-cli v2 ({AWS_BIN}) as alice: aws s3 cp of a 6 MiB file to two keys")
    cli_env = dict(os.environ, AWS_ACCESS_KEY_ID=alice_keys["access_key_id"],
                   AWS_SECRET_ACCESS_KEY=alice_keys["secret_access_key"], AWS_PAGER="")

    def aws(*args, env=None):
        cmd = [AWS_BIN, "--endpoint-url", ep, *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env or cli_env)

    version = aws("--version")
    print(f"  {version.stdout.strip()}")
    c.check("aws-cli/2." in version.stdout + version.stderr, "aws --version is aws-cli v2", version.stdout)

    def cli_cp(path, data, key, instant, env=None, parts=1):
        """aws s3 cp PATH s3://A/KEY --debug: returns the bytes sent."""
        what = f"aws s3 cp {os.path.basename(path)} s3://{A}/{key}"
        mark = proxy.mark()
        out = aws("s3", "cp", path, f"s3://{A}/{key}", "--no-progress", "--debug", env=env)
        sent, conns = proxy.since(mark)
        ok = c.check(out.returncode == 0, what, f"exit {out.returncode}\n{out.stderr[-3000:]}")
        skipped = out.stderr.count("Received a non 100 Continue response from the server, NOT sending request body")
        continued = out.stderr.count("100 Continue response seen, now sending request body")
        print(f"  {what}: sent {sent} B for a {len(data)} B file over {len(conns)} connection(s); --debug: "
              f"{continued} x '100 Continue response seen', {skipped} x 'non 100 Continue response … NOT sending'")
        if ok:
            sent_check(what, sent, len(data), instant)
            c.eq(f"{what}: --debug: requests answered without the body sent / with 100 Continue",
                 (skipped, continued), (parts, 0) if instant else (0, parts))
        return sent

    c6_path, c6 = write_random("cli-6mib.bin", 6 * MiB)
    before = snapshot("before")
    first_sent = cli_cp(c6_path, c6, "cli/first.bin", instant=False)
    mid = snapshot("after the first aws s3 cp")
    again_sent = cli_cp(c6_path, c6, "cli/second.bin", instant=True)
    numbers.append(("aws-cli v2 s3 cp 6 MiB", 6 * MiB, first_sent, again_sent))
    after = snapshot("after the second aws s3 cp")
    grew("first aws s3 cp", before, mid, objects=1, logical_bytes=6 * MiB, stored_bytes=6 * MiB, distinct_blobs=1)
    grew("second aws s3 cp (instant)", mid, after, objects=1, logical_bytes=6 * MiB, stored_bytes=0,
         distinct_blobs=0)
    for key in ("cli/first.bin", "cli/second.bin"):
        dst = os.path.join(WORK, "dl-" + key.replace("/", "-"))
        out = aws("s3", "cp", f"s3://{A}/{key}", dst, "--no-progress")
        if c.check(out.returncode == 0, f"aws s3 cp s3://{A}/{key} {os.path.basename(dst)} (download)",
                   out.stderr[-2000:]):
            with open(dst, "rb") as f:
                got = f.read()
            c.eq(f"aws s3 cp {key} down: byte-exact (SHA-256)", sha256_hex(got), sha256_hex(c6))
    head = c.call(f"head_object {A}/cli/second.bin", alice.head_object, Bucket=A, Key="cli/second.bin",
                  ChecksumMode="ENABLED")
    c6_crc64 = None
    if head:
        c.eq("head_object cli/second.bin: ETag is the MD5", head.get("ETag"), quoted_md5(c6))
        c6_crc64 = head.get("ChecksumCRC64NVME")
        print(f"  cli/second.bin checksum: CRC64NVME={c6_crc64} (aws-cli 2.9.19 asks for none: the server's default)")

    c.step("2b. aws-cli v2: aws s3 cp of a 24 MiB file with multipart_threshold/chunksize 8MB "
           "(a private AWS_CONFIG_FILE), to two keys")
    mp_env = dict(cli_env, AWS_CONFIG_FILE=os.path.join(WORK, "aws-config-instant-mp"))
    open(mp_env["AWS_CONFIG_FILE"], "w").close()
    for setting in ("default.s3.multipart_threshold", "default.s3.multipart_chunksize"):
        out = aws("configure", "set", setting, "8MB", env=mp_env)
        c.check(out.returncode == 0, f"aws configure set {setting} 8MB (private AWS_CONFIG_FILE)", out.stderr)
    m_path, m = write_random("cli-24mib.bin", 24 * MiB)
    m_etag = multipart_etag(m, 8 * MiB)
    before = snapshot("before")
    first_sent = cli_cp(m_path, m, "cli/mp-first.bin", instant=False, env=mp_env, parts=3)
    mid = snapshot("after the first multipart aws s3 cp")
    again_sent = cli_cp(m_path, m, "cli/mp-second.bin", instant=True, env=mp_env, parts=3)
    numbers.append(("aws-cli v2 s3 cp 24 MiB (3 x 8 MiB parts)", 24 * MiB, first_sent, again_sent))
    after = snapshot("after the second multipart aws s3 cp")
    grew("first multipart aws s3 cp", before, mid, objects=1, logical_bytes=24 * MiB, stored_bytes=24 * MiB,
         distinct_blobs=3)
    grew("second multipart aws s3 cp (every part instant)", mid, after, objects=1, logical_bytes=24 * MiB,
         stored_bytes=0, distinct_blobs=0)
    for key in ("cli/mp-first.bin", "cli/mp-second.bin"):
        head = c.call(f"head_object {A}/{key}", alice.head_object, Bucket=A, Key=key)
        if head:
            c.eq(f"head_object {key}: multipart ETag md5(part MD5s)-3", head.get("ETag"), m_etag)
        dst = os.path.join(WORK, "dl-" + key.replace("/", "-"))
        out = aws("s3", "cp", f"s3://{A}/{key}", dst, "--no-progress")
        if c.check(out.returncode == 0, f"aws s3 cp s3://{A}/{key} (download)", out.stderr[-2000:]):
            with open(dst, "rb") as f:
                got = f.read()
            c.eq(f"aws s3 cp {key} down: byte-exact (SHA-256)", sha256_hex(got), sha256_hex(m))

    # ------------------------------------------------------------------ 3. boto3 multipart
    c.step("3. boto3 multipart, ChecksumAlgorithm SHA256, a 12 MiB file in parts of 5, 5, 2 MiB "
           "(io.BytesIO bodies: Expect: 100-continue)")
    f_path, fdata = write_random("mp-12mib.bin", 12 * MiB)
    psize = 5 * MiB
    fparts = [fdata[i:i + psize] for i in range(0, len(fdata), psize)]
    f_etag = multipart_etag(fdata, psize)
    f_composite = base64.b64encode(hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in fparts)).digest()
                                   ).decode() + f"-{len(fparts)}"
    part_headers = []
    alice.meta.events.register("before-send.s3.UploadPart",
                               lambda request, **_: part_headers.append(dict(request.headers)))

    def upload_part(bucket, key, uid, number, data, instant):
        what = f"upload_part {key} #{number} ({size_str(len(data))})"
        mark = proxy.mark()
        out = c.call(what, alice.upload_part, Bucket=bucket, Key=key, UploadId=uid, PartNumber=number,
                     Body=io.BytesIO(data), ChecksumAlgorithm="SHA256")
        sent, _ = proxy.since(mark)
        if out is None:
            return None, sent
        hdrs = headers_of(out)
        print(f"  {what}: sent {sent} B; {INSTANT}: {hdrs.get(INSTANT)}")
        header_check(what, hdrs, instant)
        sent_check(what, sent, len(data), instant)
        c.eq(f"{what}: ETag is the part's MD5, ChecksumSHA256 the part's",
             (out.get("ETag"), out.get("ChecksumSHA256")), (quoted_md5(data), sha256_b64(data)))
        return {"PartNumber": number, "ETag": out.get("ETag"), "ChecksumSHA256": out.get("ChecksumSHA256")}, sent

    def create(bucket, key):
        out = c.call(f"create_multipart_upload {bucket}/{key} ChecksumAlgorithm=SHA256",
                     alice.create_multipart_upload, Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")
        return (out or {}).get("UploadId")

    def complete(bucket, key, uid, parts, data, etag, composite):
        what = f"complete_multipart_upload {bucket}/{key}"
        out = c.call(what, alice.complete_multipart_upload, Bucket=bucket, Key=key, UploadId=uid,
                     MultipartUpload={"Parts": parts})
        if out:
            c.eq(f"{what}: multipart ETag", out.get("ETag"), etag)
            if composite:
                c.eq(f"{what}: COMPOSITE ChecksumSHA256 (sha256 of the part SHA-256s)-N",
                     out.get("ChecksumSHA256"), composite)
        return out

    before = snapshot("before")
    u1 = create(A, "mp/interrupted.bin")
    u1_parts, first_sent = [], 0
    for n in (1, 2):
        p, sent = upload_part(A, "mp/interrupted.bin", u1, n, fparts[n - 1], instant=False)
        u1_parts.append(p)
        first_sent += sent
    if part_headers:
        h = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in part_headers[-1].items()}
        c.eq("botocore sent Expect: 100-continue for the BytesIO part body", h.get("expect"), "100-continue")
    print("  (upload 1 is left unfinished after parts 1 and 2, as if the client had been interrupted)")
    u2 = create(A, "mp/resumed.bin")
    u2_parts, again_sent = [], 0
    for n in (1, 2):
        p, sent = upload_part(A, "mp/resumed.bin", u2, n, fparts[n - 1], instant=True)
        u2_parts.append(p)
        again_sent += sent
    numbers.append(("boto3 upload_part x 2 (5 + 5 MiB)", 10 * MiB, first_sent, again_sent))
    if all(u1_parts) and all(u2_parts):
        c.eq("resumed upload: parts 1-2 have the ETags and checksums of the unfinished upload's", u2_parts,
             [dict(p) for p in u1_parts])
    p3, _ = upload_part(A, "mp/resumed.bin", u2, 3, fparts[2], instant=False)
    u2_parts.append(p3)
    lp = c.call("list_parts of the resumed upload", alice.list_parts, Bucket=A, Key="mp/resumed.bin", UploadId=u2)
    if lp:
        c.eq("list_parts: 3 parts with their sizes and ETags",
             [(p["PartNumber"], p["Size"], p["ETag"]) for p in lp.get("Parts", [])],
             [(n + 1, len(p), quoted_md5(p)) for n, p in enumerate(fparts)])
    if all(u2_parts):
        complete(A, "mp/resumed.bin", u2, u2_parts, fdata, f_etag, f_composite)
    c.call("abort_multipart_upload of the unfinished upload 1", alice.abort_multipart_upload, Bucket=A,
           Key="mp/interrupted.bin", UploadId=u1)
    reads_back("alice", alice, A, "mp/resumed.bin", fdata, f_etag)
    after = snapshot("after the resumed upload, upload 1 aborted")
    grew("the resumed upload: 12 MiB stored once", before, after, objects=1, upload_parts=0,
         logical_bytes=12 * MiB, stored_bytes=12 * MiB, distinct_blobs=3)

    c.step("3b. the same file again in a new upload (another bucket): every part instant, same ETag and checksum")
    before = after
    u3 = create(A2, "mp/again.bin")
    u3_parts = []
    for n, data in enumerate(fparts, 1):
        p, _ = upload_part(A2, "mp/again.bin", u3, n, data, instant=True)
        u3_parts.append(p)
    upload_part(A2, "mp/again.bin", u3, 1, fparts[0], instant=True)  # part 1 again: replaced by itself
    lp = c.call("list_parts of the instant upload", alice.list_parts, Bucket=A2, Key="mp/again.bin", UploadId=u3)
    if lp:
        c.eq("list_parts: the instant parts with their sizes, ETags and SHA-256s",
             [(p["PartNumber"], p["Size"], p["ETag"], p.get("ChecksumSHA256")) for p in lp.get("Parts", [])],
             [(n + 1, len(p), quoted_md5(p), sha256_b64(p)) for n, p in enumerate(fparts)])
    if all(u3_parts):
        complete(A2, "mp/again.bin", u3, u3_parts, fdata, f_etag, f_composite)
    reads_back("alice", alice, A2, "mp/again.bin", fdata, f_etag)
    head = c.call("head_object mp/again.bin ChecksumMode=ENABLED", alice.head_object, Bucket=A2, Key="mp/again.bin",
                  ChecksumMode="ENABLED")
    if head:
        c.eq("head_object mp/again.bin: ETag, COMPOSITE ChecksumSHA256",
             (head.get("ETag"), head.get("ChecksumSHA256"), head.get("ChecksumType")),
             (f_etag, f_composite, "COMPOSITE"))
    after = snapshot("after the instant upload")
    grew("the instant multipart upload", before, after, objects=1, logical_bytes=12 * MiB, stored_bytes=0,
         distinct_blobs=0)

    c.step("3c. held as a part, put as an object; held as an object, sent as a part")
    before = after
    p1_path = os.path.join(WORK, "part1.bin")
    with open(p1_path, "wb") as f:
        f.write(fparts[0])
    put("alice", alice, A, "mp/part1-as-object.bin", p1_path, fparts[0], instant=True)
    reads_back("alice", alice, A, "mp/part1-as-object.bin", fparts[0])
    tail = os.urandom(MiB)
    u4 = create(A, "mp/x-then-tail.bin")
    p1, _ = upload_part(A, "mp/x-then-tail.bin", u4, 1, x, instant=True)
    p2, _ = upload_part(A, "mp/x-then-tail.bin", u4, 2, tail, instant=False)
    if p1 and p2:
        complete(A, "mp/x-then-tail.bin", u4, [p1, p2], x + tail, multipart_etag(x + tail, 8 * MiB), None)
    x_copies.append((alice, A, "mp/x-then-tail.bin", None))
    reads_back("alice", alice, A, "mp/x-then-tail.bin", x + tail, multipart_etag(x + tail, 8 * MiB))
    after = snapshot("after")
    grew("part as object, object as part: only the 1 MiB tail is new", before, after, objects=2,
         logical_bytes=5 * MiB + 9 * MiB, stored_bytes=MiB, distinct_blobs=1)

    # ------------------------------------------------------------------ 4. raw HTTP
    c.step("4. a raw socket: SigV4 PUT with Expect: 100-continue and only a hex x-amz-content-sha256 "
           "(content held with the server's default checksum, from aws-cli's upload in 2.)")

    def raw_put(who, keys, bucket, key, sha_hex, size, extra=None):
        """Sends the request head only; returns (RawConn, first answer, head bytes)."""
        headers = {"Content-Length": str(size), "Expect": "100-continue"}
        if sha_hex:
            headers["x-amz-content-sha256"] = sha_hex
        headers.update(extra or {})
        head = signed_head("PUT", proxy.port, f"/{bucket}/{urllib.parse.quote(key)}", keys, headers)
        rc = RawConn(proxy.port)
        rc.send(head)
        try:
            first = rc.read_response()
        except (OSError, EOFError) as e:
            c.check(False, f"{who} raw PUT {bucket}/{key}: an answer to the head", repr(e))
            rc.close()
            return None, None, len(head)
        print(f"  {who} raw PUT {bucket}/{key} ({size} B declared): first answer {first.status} {first.reason}")
        return rc, first, len(head)

    def body_after_continue(what, rc, first, body):
        """Sends BODY if FIRST was 100 Continue and returns the final answer
        (FIRST itself otherwise); None, a failed check, if the exchange broke."""
        try:
            if first.status != 100:
                return first
            rc.send(body)
            return rc.read_response()
        except (OSError, EOFError) as e:
            c.check(False, f"{what}: a final answer", repr(e))
            return None

    before = snapshot("before")
    mark = proxy.mark()
    rc, first, head_len = raw_put("alice", alice_keys, A, "raw/c6.bin", sha256_hex(c6), len(c6))
    if first:
        c.eq("alice raw PUT: the first answer is the final 200 (no 100 Continue)", first.status, 200)
        c.eq("alice raw PUT: x-tessera-instant-upload: true, connection: close",
             (first.headers.get(INSTANT), first.headers.get("connection")), ("true", "close"))
        c.eq("alice raw PUT: ETag (MD5) and the x-amz-checksum-crc64nvme of aws-cli's upload",
             (first.headers.get("etag"), first.headers.get("x-amz-checksum-crc64nvme")), (quoted_md5(c6), c6_crc64))
        closed = rc.closed_by_peer()
        c.check(closed, "alice raw PUT: then the server closes the connection (EOF without sending anything)")
        rc.close()
        sent, conns = proxy.since(mark)
        for conn in conns:
            conn.done.wait(5)
        c.eq("alice raw PUT: the proxy saw exactly the request head from the client, nothing more",
             (sent, len(conns)), (head_len, 1))
        if conns:
            c.eq("alice raw PUT: the proxy saw the server close the connection first", conns[0].first_eof, "server")
        numbers.append(("raw socket PUT 6 MiB (alice, instant)", 6 * MiB, None, sent))
    reads_back("alice", alice, A, "raw/c6.bin", c6)

    c.step("4b. the same raw PUT by bob (who does not hold the content): 100 Continue, the body is read")
    mark = proxy.mark()
    rc, first, head_len = raw_put("bob", bob_keys, BOB, "raw/c6.bin", sha256_hex(c6), len(c6))
    if first:
        c.eq("bob raw PUT: the first answer is 100 Continue", first.status, 100)
        final = body_after_continue("bob raw PUT", rc, first, c6)
        rc.close()
        if final:
            c.eq("bob raw PUT, body sent: 200, ETag, no instant header",
                 (final.status, final.headers.get("etag"), final.headers.get(INSTANT)), (200, quoted_md5(c6), None))
            c.check(final.headers.get("connection", "").lower() != "close",
                    "bob raw PUT: the connection is kept open (no connection: close)", final.headers)
        sent, _ = proxy.since(mark)
        c.eq("bob raw PUT: the proxy saw the head and the whole body", sent, head_len + len(c6))
        numbers.append(("raw socket PUT 6 MiB (bob, not held)", 6 * MiB, sent, None))
    reads_back("bob", bob, BOB, "raw/c6.bin", c6)
    after = snapshot("after the raw PUTs")
    grew("two raw PUTs of held content", before, after, objects=2, logical_bytes=12 * MiB, stored_bytes=0)

    c.step("4c. curl --aws-sigv4 with Expect: 100-continue, x-amz-content-sha256 and x-amz-checksum-sha256")
    curl_version = subprocess.run(["curl", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    print(f"  {curl_version}")
    mark = proxy.mark()
    out = subprocess.run(
        ["curl", "-sS", "-v", "--fail-with-body", "--aws-sigv4", "aws:amz:us-east-1:s3",
         "--user", f"{alice_keys['access_key_id']}:{alice_keys['secret_access_key']}",
         "-H", f"x-amz-content-sha256: {sha256_hex(x)}", "-H", f"x-amz-checksum-sha256: {sha256_b64(x)}",
         "-H", "Expect: 100-continue", "-T", x_path, f"{ep}/{A}/curl/x.bin"],
        capture_output=True, text=True, timeout=60)
    sent, _ = proxy.since(mark)
    answers = re.findall(r"^< (HTTP/1\.1 \d+[^\r\n]*)", out.stderr, re.M)
    print(f"  curl: exit {out.returncode}, answers {answers}, sent {sent} B for {len(x)} B")
    c.check(out.returncode == 0, "curl -T x-8mib.bin exits 0", out.stderr[-2000:])
    c.eq("curl: one answer, the final 200 (no 100 Continue)", [a.strip() for a in answers], ["HTTP/1.1 200 OK"])
    c.check(re.search(rf"^< {INSTANT}: true", out.stderr, re.M | re.I) is not None,
            f"curl: {INSTANT}: true in the answer", out.stderr[-2000:])
    sent_check("curl -T", sent, len(x), instant=True)
    numbers.append(("curl -T 8 MiB (alice)", 8 * MiB, None, sent))
    x_copies.append((alice, A, "curl/x.bin", None))
    reads_back("alice", alice, A, "curl/x.bin", x)

    c.step("4d. presigned PUT URLs (SigV4, alice's): one that signs x-amz-checksum-sha256, used with Expect, "
           "is instant; a bearer cannot add an unsigned checksum header to probe what alice holds")
    presigner = boto3.client("s3", endpoint_url=ep, region_name="us-east-1",
                             aws_access_key_id=alice_keys["access_key_id"],
                             aws_secret_access_key=alice_keys["secret_access_key"],
                             config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))

    def presigned_put(url, headers, body):
        """PUT URL with HEADERS and Expect: 100-continue on a raw socket: (first answer, final, bytes sent)."""
        u = urllib.parse.urlsplit(url)
        lines = [f"PUT {u.path}?{u.query} HTTP/1.1", f"Host: {u.netloc}", f"Content-Length: {len(body)}",
                 "Expect: 100-continue"] + [f"{k}: {v}" for k, v in headers.items()]
        mark = proxy.mark()
        rc = RawConn(proxy.port)
        try:
            rc.send(("\r\n".join(lines) + "\r\n\r\n").encode())
            first = rc.read_response()
        except (OSError, EOFError) as e:
            c.check(False, f"presigned PUT {u.path}: an answer to the head", repr(e))
            rc.close()
            return RawResponse(0, "", {}), RawResponse(0, "", {}), proxy.since(mark)[0]
        final = body_after_continue(f"presigned PUT {u.path}", rc, first, body) or RawResponse(0, "", {})
        rc.close()
        return first, final, proxy.since(mark)[0]

    url = presigner.generate_presigned_url("put_object", Params={"Bucket": A, "Key": "presigned/x.bin",
                                                                 "ChecksumSHA256": sha256_b64(x)})
    c.check("x-amz-checksum-sha256" in url, "the presigned URL signs x-amz-checksum-sha256", url)
    first, final, sent = presigned_put(url, {"x-amz-checksum-sha256": sha256_b64(x)}, x)
    c.eq("presigned PUT with the signed x-amz-checksum-sha256 of held content: the final 200 at once, instant",
         (first.status, first.headers.get(INSTANT), first.headers.get("etag")), (200, "true", quoted_md5(x)))
    sent_check("presigned PUT (signed checksum)", sent, len(x), instant=True)
    numbers.append(("presigned PUT 8 MiB, signed x-amz-checksum-sha256", 8 * MiB, None, sent))
    x_copies.append((alice, A, "presigned/x.bin", None))
    reads_back("alice", alice, A, "presigned/x.bin", x)
    url = presigner.generate_presigned_url("put_object", Params={"Bucket": A, "Key": "presigned/probe.bin"})
    first, final, sent = presigned_put(url, {"x-amz-checksum-sha256": sha256_b64(x)}, x)
    c.check(first.status == 403 and final.code() == "AccessDenied" and b"HeadersNotSigned" in final.body,
            "presigned URL without a checksum, an x-amz-checksum-sha256 header added by the bearer: "
            "403 AccessDenied (HeadersNotSigned), no instant answer",
            f"{first.status} {first.headers} {final.body[:400]!r}")
    c.error(f"head_object {A}/presigned/probe.bin: nothing stored (404)", "404", alice.head_object, Bucket=A,
            Key="presigned/probe.bin")

    # ------------------------------------------------------------------ 5. other users
    c.step("5. bob puts alice's 8 MiB content: he does not hold it, so he sends it (stored once), then he holds it")
    before = snapshot("before")
    out, first_sent = put("bob", bob, BOB, "x/first.bin", x_path, x, instant=False)
    x_copies.append((bob, BOB, "x/first.bin", None))
    mid = snapshot("after bob's first upload")
    grew("bob's first upload: deduplicated, not instant", before, mid, objects=1, logical_bytes=8 * MiB,
         stored_bytes=0, distinct_blobs=0)
    out, again_sent = put("bob", bob, BOB, "x/second.bin", x_path, x, instant=True)
    x_copies.append((bob, BOB, "x/second.bin", None))
    numbers.append(("boto3 put_object 8 MiB, bob after alice", 8 * MiB, first_sent, again_sent))
    reads_back("bob", bob, BOB, "x/first.bin", x)
    reads_back("bob", bob, BOB, "x/second.bin", x)

    c.step("5b. carol declares alice's SHA-256 but sends other bytes of the same size")
    y_path, y = write_random("y-8mib.bin", 8 * MiB)
    before = snapshot("before")
    mark = proxy.mark()
    with open(y_path, "rb") as f:
        try:
            res = carol.put_object(Bucket=CAROL, Key="fake.bin", Body=f, ChecksumSHA256=sha256_b64(x))
            c.check(False, "carol boto3 put_object with ChecksumSHA256=<alice's> and other bytes: refused",
                    f"it succeeded: {headers_of(res)}")
        except ClientError as e:
            c.check(error_code(e) in ("BadDigest", "XAmzContentSHA256Mismatch"),
                    f"carol boto3 put_object with ChecksumSHA256=<alice's> and other bytes: refused ({error_code(e)})",
                    repr(e))
            c.eq("carol's refusal carries no instant header", headers_of(e.response).get(INSTANT), None)
    sent, _ = proxy.since(mark)
    c.check(sent >= len(y), f"carol (boto3) had to send her whole body: {sent} B")
    rc, first, _ = raw_put("carol", carol_keys, CAROL, "fake-raw.bin", sha256_hex(x), len(x),
                           {"x-amz-checksum-sha256": sha256_b64(x)})
    if first:
        c.eq("carol raw PUT declaring alice's x-amz-content-sha256 and x-amz-checksum-sha256: 100 Continue "
             "(nothing tells her the content exists)", (first.status, first.headers.get(INSTANT)), (100, None))
        final = body_after_continue("carol raw PUT", rc, first, y)
        rc.close()
        if final:
            c.check(final.status == 400 and final.code() in ("BadDigest", "XAmzContentSHA256Mismatch"),
                    f"carol raw PUT with other bytes: 400 {final.code()}", f"{final.status} {final.body[:500]!r}")
    for key in ("fake.bin", "fake-raw.bin"):
        c.error(f"carol head_object {CAROL}/{key}: 404", "404", carol.head_object, Bucket=CAROL, Key=key)
    lo = c.call(f"carol list_objects_v2 {CAROL}", carol.list_objects_v2, Bucket=CAROL)
    if lo is not None:
        c.eq(f"carol's bucket {CAROL} is empty", [o["Key"] for o in lo.get("Contents", [])], [])
    c.error("carol get_object alice's x/first.bin: AccessDenied", "AccessDenied", carol.get_object, Bucket=A,
            Key="x/first.bin")
    after = snapshot("after carol's attempts")
    grew("carol's attempts store nothing", before, after, objects=0, logical_bytes=0, stored_bytes=0,
         distinct_blobs=0)

    c.step(f"5c. an anonymous PUT into alice's public-read-write bucket {AOPEN} is never instant")
    rc, first, head_len = raw_put("anonymous", None, AOPEN, "anon.bin", None, len(x),
                                  {"x-amz-checksum-sha256": sha256_b64(x)})
    if first:
        c.eq("anonymous raw PUT declaring x-amz-checksum-sha256 of held content: 100 Continue",
             (first.status, first.headers.get(INSTANT)), (100, None))
        final = body_after_continue("anonymous raw PUT", rc, first, x)
        rc.close()
        if final:
            c.eq("anonymous raw PUT, body sent: 200, no instant header",
                 (final.status, final.headers.get(INSTANT), final.headers.get("etag")), (200, None, quoted_md5(x)))
    c.call(f"alice delete_object {AOPEN}/anon.bin", alice.delete_object, Bucket=AOPEN, Key="anon.bin")

    # ------------------------------------------------------------------ 6. deletes
    c.step("6. alice deletes her copies of the 8 MiB content: she no longer holds it (bob still does)")
    alice_x = [cp for cp in x_copies if cp[0] is alice]
    for _, b, k, vid in alice_x:
        kw = {"VersionId": vid} if vid else {}
        c.call(f"alice delete_object {b}/{k}{' VersionId=' + vid if vid else ''}", alice.delete_object,
               Bucket=b, Key=k, **kw)
    x_copies = [cp for cp in x_copies if cp[0] is not alice]
    before = snapshot("alice's copies deleted")
    out, _ = put("alice", alice, A, "x/after-delete.bin", x_path, x, instant=False)
    mid = snapshot("after")
    grew("alice's upload after deleting her copies: sent again, stored once", before, mid, objects=1,
         logical_bytes=8 * MiB, stored_bytes=0, distinct_blobs=0)
    c.call(f"alice delete_object {A}/x/after-delete.bin", alice.delete_object, Bucket=A, Key="x/after-delete.bin")
    put("bob", bob, BOB, "x/third.bin", x_path, x, instant=True)
    x_copies.append((bob, BOB, "x/third.bin", None))

    c.step("6b. every copy deleted (bob's, root's): the content is gone; the next upload sends its body")
    full = snapshot("before")
    for s3, b, k, _ in x_copies:
        c.call(f"delete_object {b}/{k}", s3.delete_object, Bucket=b, Key=k)
    gone = snapshot("every copy deleted")
    grew("every copy of the 8 MiB content deleted", full, gone, objects=-len(x_copies),
         logical_bytes=-8 * MiB * len(x_copies), stored_bytes=-8 * MiB, distinct_blobs=-1)
    out, first_sent = put("alice", alice, A, "x/anew.bin", x_path, x, instant=False)
    mid = snapshot("after the new upload")
    grew("the new upload is stored anew", gone, mid, objects=1, logical_bytes=8 * MiB, stored_bytes=8 * MiB,
         distinct_blobs=1)
    out, again_sent = put("alice", alice, A, "x/anew-2.bin", x_path, x, instant=True)
    numbers.append(("boto3 put_object 8 MiB after every copy was deleted", 8 * MiB, first_sent, again_sent))
    reads_back("alice", alice, A, "x/anew-2.bin", x)

    c.step("6c. delete everything: stats back to the baseline")
    for s3, b in ((alice, A), (alice, A2), (alice, AVER), (alice, AOPEN), (bob, BOB), (carol, CAROL), (root, ROOT)):
        lv = c.call(f"list_object_versions {b}", s3.list_object_versions, Bucket=b)
        for v in (lv or {}).get("Versions", []) + (lv or {}).get("DeleteMarkers", []):
            c.call(f"delete_object {b}/{v['Key']} VersionId={v['VersionId']}", s3.delete_object, Bucket=b,
                   Key=v["Key"], VersionId=v["VersionId"])
        mu = c.call(f"list_multipart_uploads {b}", s3.list_multipart_uploads, Bucket=b)
        c.eq(f"{b}: no multipart upload left", [u["Key"] for u in (mu or {}).get("Uploads", [])], [])
    end = snapshot("end")
    if base and end:
        c.eq("end: stats back to the baseline", {f: end[f] for f in FIELDS}, {f: base[f] for f in FIELDS})
    disk_matches_stats("end", end)
    for s3, b in ((alice, A), (alice, A2), (alice, AVER), (alice, AOPEN), (bob, BOB), (carol, CAROL), (root, ROOT)):
        c.call(f"delete_bucket {b}", s3.delete_bucket, Bucket=b)

    print("\nbytes the clients sent to the server (through the proxy): body, first upload, upload again")
    for what, size, a, b in numbers:
        fmt = lambda n: "-" if n is None else f"{n} B"  # noqa: E731
        print(f"  {what:<52} body {size:>9} B   first {fmt(a):>11}   again {fmt(b):>9}")
    proxy.close()
    c.finish()


# ---------------------------------------------------------------------- across a restart
RESTART_BUCKET = "inst-restart"


def restart_phase(phase):
    """`before`: alice stores a 3 MiB file twice (the second instant). The
    script then restarts the server on the same folder. `after`: her third
    upload is still instant (the content index and who holds what are on
    disk), bob's is not; then everything is deleted."""
    c = Checks(f"instant-boto3 ({phase} the restart)")
    with open(os.environ["INSTANT_USERS_FILE"]) as f:
        users = json.load(f)
    proxy = CountingProxy(SERVER.hostname, SERVER.port)
    alice, bob = s3_client(proxy.endpoint, users["alice"]), s3_client(proxy.endpoint, users["bob"])
    path = os.path.join(WORK, "restart-3mib.bin")
    if phase == "before":
        data = os.urandom(3 * MiB)
        with open(path, "wb") as f:
            f.write(data)
    else:
        with open(path, "rb") as f:
            data = f.read()

    def put(who, s3, bucket, key, instant):
        mark = proxy.mark()
        with open(path, "rb") as f:
            out = c.call(f"{who} put_object {bucket}/{key} (3 MiB, open file, SHA256)", s3.put_object,
                         Bucket=bucket, Key=key, Body=f, ChecksumAlgorithm="SHA256")
        sent, _ = proxy.since(mark)
        if out is None:
            return
        flag = headers_of(out).get(INSTANT)
        print(f"  {who} put_object {bucket}/{key}: sent {sent} B; {INSTANT}: {flag}")
        if instant:
            c.check(flag == "true" and sent < TINY, f"{who} put_object {key}: instant ({sent} B sent, < 64 KiB)")
        else:
            c.check(flag is None and sent >= len(data), f"{who} put_object {key}: the body was sent ({sent} B)")
        c.eq(f"{who} put_object {key}: ETag", out.get("ETag"), quoted_md5(data))

    if phase == "before":
        c.step("before the restart: alice stores a 3 MiB file twice")
        c.call(f"alice create_bucket {RESTART_BUCKET}", alice.create_bucket, Bucket=RESTART_BUCKET)
        put("alice", alice, RESTART_BUCKET, "r/1.bin", instant=False)
        put("alice", alice, RESTART_BUCKET, "r/2.bin", instant=True)
    else:
        c.step("after the restart (same data folder): alice is still instant, bob still is not")
        put("alice", alice, RESTART_BUCKET, "r/3.bin", instant=True)
        out = c.call(f"alice get_object {RESTART_BUCKET}/r/3.bin", alice.get_object, Bucket=RESTART_BUCKET,
                     Key="r/3.bin")
        if out:
            c.eq("r/3.bin reads back byte-exact (SHA-256)", sha256_hex(out["Body"].read()), sha256_hex(data))
        c.call(f"bob create_bucket {RESTART_BUCKET}-bob", bob.create_bucket, Bucket=RESTART_BUCKET + "-bob")
        put("bob", bob, RESTART_BUCKET + "-bob", "r/1.bin", instant=False)
        for s3, b, keys in ((alice, RESTART_BUCKET, ("r/1.bin", "r/2.bin", "r/3.bin")),
                            (bob, RESTART_BUCKET + "-bob", ("r/1.bin",))):
            for k in keys:
                c.call(f"delete_object {b}/{k}", s3.delete_object, Bucket=b, Key=k)
            c.call(f"delete_bucket {b}", s3.delete_bucket, Bucket=b)
        try:
            st = stats()
            c.eq("stats: every field 0 again", {f: st.get(f) for f in FIELDS}, {f: 0 for f in FIELDS})
        except Exception as e:  # noqa: BLE001
            c.check(False, "tessera stats --json", repr(e))
    proxy.close()
    c.finish()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        restart_phase(sys.argv[1])
    else:
        main()
