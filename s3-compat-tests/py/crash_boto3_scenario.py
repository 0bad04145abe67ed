"""Crash consistency with a real client: boto3 against a tessera killed with SIGKILL.

The boto3 counterpart of tests/kill_loop.rs (same model). This script owns the
server: it starts $TESSERA_BIN on $WORK/data, and in each cycle lets two or
three client threads (one boto3 client each, no retries) loop over PutObject,
CopyObject, DeleteObjects, CreateMultipartUpload, UploadPart,
CompleteMultipartUpload and AbortMultipartUpload, kills the server with SIGKILL
after a random 20-300 ms, restarts it on the same data folder and checks a
model of what was acknowledged (a full 2xx answer that boto3 parsed):

- every acknowledged write reads back byte-exact (GetObject, MD5 of the bytes)
  and ListObjectsV2 lists exactly the keys that read as present;
- a write in flight at the kill left its key whole, as before or as after,
  never torn; a DeleteObjects in flight left each of its keys as before or absent;
- ListParts shows every acknowledged part with its ETag and size (a part in
  flight: absent, old or new), and a Complete in flight is all or nothing (the
  new object and the upload gone, or the old object and the upload still there);
- ListMultipartUploads shows exactly the known uploads (plus the one a
  CreateMultipartUpload in flight may have made).

Each operation in doubt is then settled by what was read, and the model goes
on from there. Each thread has its own keys (t<N>/k<M>), so no two operations
race on one key and at most one per thread is in doubt. A client error that
happens before the kill, a server that exits by itself, or an error answer
(4xx/5xx) to a valid request fails the run. At the end everything is deleted
and aborted; `tessera scrub` must pass on the folder left by the last kill; after
one more restart (the orphan sweep runs at start-up) no file may be left under
blobs/ or tmp/, and `tessera scrub` passes on the emptied folder.

Environment: TESSERA_BIN, WORK, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
TEST_BUCKET (lib.sh exports them);
  S3T_CRASH_KILLS  number of kills (default 200; 2000 with S3T_CRASH_LONG=1)
  S3T_CRASH_LONG=1 long mode: 2000 kills, always 3 threads, more 5 MiB parts
  S3T_CRASH_SEED   replay a run's choices (bodies, operations, kill delays);
                   where a kill lands among the operations still depends on timing
"""

import collections
import hashlib
import http.client
import os
import random
import signal
import subprocess
import sys
import threading
import time
import traceback

import boto3
import urllib3.exceptions
from botocore.config import Config
from botocore.exceptions import (BotoCoreError, ClientError, ConnectTimeoutError,
                                 EndpointConnectionError)

KiB = 1024
MiB = 1024 * 1024
BIN = os.environ.get("TESSERA_BIN") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "target", "release", "tessera")
WORK = os.environ["WORK"]
DATA = os.path.join(WORK, "data")
SERVER_LOG = os.path.join(WORK, "server.log")
BUCKET = os.environ.get("TEST_BUCKET", "compat")
ACCESS_KEY = os.environ["AWS_ACCESS_KEY_ID"]
SECRET_KEY = os.environ["AWS_SECRET_ACCESS_KEY"]
REGION = "us-east-1"

KEYS = 6  # keys per client thread (each thread has its own)
MAX_UPLOADS = 3  # uploads in progress per thread, at most
MAX_PART_NUMBER = 6  # parts are numbered 1 to this, so some are uploaded again
HISTORY = 5000  # operations a thread remembers for a failure report

KINDS = ["PutObject", "CopyObject", "DeleteObjects", "CreateMultipartUpload", "UploadPart",
         "CompleteMultipartUpload", "AbortMultipartUpload"]
PUT, COPY, DELETE, CREATE, PART, COMPLETE, ABORT = range(7)

SESSION = boto3.session.Session()


def new_client(on_send=None):
    """A boto3 client for the current server. Made in the main thread (making
    clients from one session is not thread-safe); each thread uses its own.

    No retries: botocore's `max_attempts` counts retries *after* the first try
    (max_attempts=1 sends a request up to twice: a PutObject cut by the kill
    would be sent again, refused, and look as if it was never sent), so this
    sets `total_max_attempts`. ON_SEND is called before each HTTP request."""
    cfg = Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1, "mode": "standard"},
                 connect_timeout=5, read_timeout=60)
    s3 = SESSION.client("s3", endpoint_url=SERVER.endpoint, region_name=REGION,
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, config=cfg)
    if on_send:
        s3.meta.events.register("before-send.s3", on_send)
    return s3


# ---------------------------------------------------------------- bodies

_md5_cache = {}


class Piece(tuple):
    """A piece of a body: SIZE random bytes from SEED. Seeds are never reused, so
    two pieces are equal only if their bytes are (or both are empty)."""

    def __new__(cls, size, seed):
        return super().__new__(cls, (size, seed))

    size = property(lambda self: self[0])
    seed = property(lambda self: self[1])

    def data(self):
        return random.Random(self.seed).randbytes(self.size)

    def md5(self):
        if self not in _md5_cache:
            _md5_cache[self] = hashlib.md5(self.data()).hexdigest()
        return _md5_cache[self]


# A body is a tuple of pieces: one for PutObject, the chosen parts for Complete.
def body_len(body):
    return sum(p.size for p in body)


def body_bytes(body):
    return b"".join(p.data() for p in body)


_body_md5_cache = {}


def body_md5(body):
    if body not in _body_md5_cache:
        h = hashlib.md5()
        for p in body:
            h.update(p.data())
        _body_md5_cache[body] = h.hexdigest()
    return _body_md5_cache[body]


def show_body(body):
    return f"{body_len(body)} B [" + " + ".join(f"{p.size}#{p.seed:x}" for p in body) + "]"


def show(state):
    return "absent" if state is None else show_body(state)


def same_bytes(a, b):
    if a is None or b is None:
        return a is None and b is None
    return body_len(a) == body_len(b) and body_md5(a) == body_md5(b)


def multipart_etag(pieces):
    joined = b"".join(bytes.fromhex(p.md5()) for p in pieces)
    return f'"{hashlib.md5(joined).hexdigest()}-{len(pieces)}"'


def read_as(data, allowed):
    """The state DATA (the bytes a GET returned, or None for NoSuchKey) shows, if it
    is one of ALLOWED; else raises ValueError with what differs."""
    states = " or ".join(show(s) for s in allowed)
    if data is None:
        if None in allowed:
            return None
        raise ValueError(f"NoSuchKey, the states it may be in: {states}")
    digest = hashlib.md5(data).hexdigest()
    diffs = []
    for body in allowed:
        if body is None or body_len(body) != len(data):
            continue
        if body_md5(body) == digest:
            return body
        expected = body_bytes(body)
        at = next(i for i, (a, b) in enumerate(zip(expected, data)) if a != b)
        diffs.append(f"differs from {show_body(body)} at byte {at}")
    raise ValueError(f"{len(data)} bytes (md5 {digest}), none of the states it may be in ({states}); "
                     + ("; ".join(diffs) if diffs else "no state has that length"))


# ---------------------------------------------------------------- the server

class Server:
    """The tessera process under test, restarted on the same data folder."""

    def __init__(self):
        self.proc = None
        self.endpoint = None
        self.starts = 0

    def start(self):
        os.makedirs(DATA, exist_ok=True)
        env = dict(os.environ, TESSERA_ACCESS_KEY=ACCESS_KEY, TESSERA_SECRET_KEY=SECRET_KEY, TESSERA_LOG="warn")
        with open(SERVER_LOG, "ab") as log:
            self.proc = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--data", DATA,
                                          "--region", REGION], env=env, stdout=subprocess.PIPE,
                                         stderr=log, stdin=subprocess.DEVNULL)
        found = threading.Event()
        addr = []

        def drain(out):
            # Read the address, then keep reading so the server never blocks on a full pipe.
            for line in out:
                if not found.is_set() and b"listening on http://" in line:
                    addr.append(line.split(b"listening on http://", 1)[1].split()[0].decode())
                    found.set()
            found.set()

        threading.Thread(target=drain, args=(self.proc.stdout,), daemon=True).start()
        if not found.wait(30) or not addr:
            code = self.proc.poll()
            self.kill()
            raise RuntimeError(f"tessera did not print 'listening on http://ADDR' within 30 s "
                               f"(exit code {code}); see the server log\n{log_tail()}")
        self.endpoint = f"http://{addr[0]}"
        self.starts += 1

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL (a crash: no shutdown code runs) and reap."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None

    def terminate(self):
        """SIGTERM; the exit code (None if it had to be killed after 20 s)."""
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None


SERVER = Server()


def log_tail(lines=30):
    try:
        with open(SERVER_LOG, errors="replace") as f:
            text = f.read().splitlines()
    except OSError:
        return "(no server log)"
    return f"server log ({SERVER_LOG}), last lines:\n" + "\n".join("  | " + x for x in text[-lines:])


def scrub():
    out = subprocess.run([BIN, "scrub", "--data", DATA], env=dict(os.environ, TESSERA_LOG="warn"),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return out.returncode, out.stdout.decode(errors="replace")


def blob_files():
    """Files under DATA/blobs/<dir>/ (as tests/common/mod.rs counts them)."""
    root = os.path.join(DATA, "blobs")
    if not os.path.isdir(root):
        return []
    found = []
    for d in sorted(os.listdir(root)):
        sub = os.path.join(root, d)
        if os.path.isdir(sub):
            found.extend(os.path.join(sub, f) for f in sorted(os.listdir(sub)))
        else:
            found.append(sub)
    return found


# ---------------------------------------------------------------- workers

class Died(Exception):
    """The request got no full answer: the server died under it (in doubt)."""


class NotSent(Exception):
    """Not even connected: the server is gone, nothing was sent."""


class Unexpected(Exception):
    """An answer (or a failure) the model does not allow."""


class Upload:
    def __init__(self, key, uid):
        self.key = key
        self.id = uid
        self.parts = {}  # part number -> (Piece, ETag without quotes)


class Stats:
    def __init__(self):
        self.acked = [0] * 7
        self.in_flight = [0] * 7
        self.applied = [0] * 7
        self.not_applied = [0] * 7
        self.either = [0] * 7  # both outcomes read the same (deleting an absent key)
        self.partial = [0] * 7  # a DeleteObjects in flight that removed some of its keys only

    def add(self, other):
        for name in vars(self):
            mine = getattr(self, name)
            for i, n in enumerate(getattr(other, name)):
                mine[i] += n


class Worker:
    """One client thread's keys, uploads and counters: its part of the model."""

    def __init__(self, t, big_part_percent):
        self.t = t
        self.keys = [None] * KEYS  # what each key certainly holds (None: absent)
        self.uploads = []
        self.pending = None  # (kind, details dict, description) in doubt after the kill
        self.next_seed = (t + 1) << 40
        self.rng = random.Random(0)
        self.cycle = 0
        self.big_part_percent = big_part_percent
        self.stats = Stats()
        self.history = collections.deque(maxlen=HISTORY)
        self.unexpected = None
        self.s3 = None
        self.sends = 0  # HTTP requests boto3 sent for the current operation
        self.kill_time = None  # set by the main thread just before the SIGKILL

    def name(self, key):
        return f"t{self.t}/k{key}"

    def log(self, text):
        self.history.append(f"cycle {self.cycle}: {text}")

    def report(self, label, what):
        """WHAT, then this thread's last operations that name LABEL."""
        lines = [h for h in self.history if label in h][-40:]
        return (f"{what}\n  last operations on {label} (cycle N = before the Nth kill):\n"
                + "\n".join(f"    {line}" for line in lines))

    def new_piece(self, size):
        self.next_seed += 1
        return Piece(size, self.next_seed * 2 + 1)

    def object_size(self):
        roll = self.rng.randrange(100)
        if roll < 5:
            return 0
        if roll < 75:
            return self.rng.randint(1, 40 * KiB)
        return self.rng.randint(100 * KiB, 300 * KiB)

    def part_size(self):
        if self.rng.randrange(100) < self.big_part_percent:
            return 5 * MiB + self.rng.choice([0, 1, 4096])
        if self.rng.randrange(100) < 80:
            return self.rng.randint(1, 40 * KiB)
        return self.rng.randint(100 * KiB, 300 * KiB)

    # -- the loop, run in a thread until the server dies under it

    def run(self):
        try:
            while True:
                self.step()
        except (Died, NotSent):
            return
        except Unexpected as e:
            self.log(f"UNEXPECTED: {e}")
            self.unexpected = str(e)
        except Exception as e:  # noqa: BLE001 - a bug in the harness must show, not hang
            self.log(f"UNEXPECTED: {e!r}")
            self.unexpected = f"harness error: {e!r}"

    def step(self):
        roll = self.rng.randrange(100)
        completable = any(u.parts for u in self.uploads)
        if not self.uploads and roll >= 60:
            return self.create()
        if roll < 30:
            return self.put()
        if roll < 42 and any(k is not None for k in self.keys):
            return self.copy()
        if 42 <= roll < 52:
            return self.delete()
        if 52 <= roll < 60 and len(self.uploads) < MAX_UPLOADS:
            return self.create()
        if 60 <= roll < 84:
            return self.part()
        if 84 <= roll < 93:
            return self.complete() if completable else self.part()
        if roll >= 93:
            return self.abort()
        return self.put()

    def exchange(self, kind, details, what, call, **params):
        """Sends one request with (KIND, DETAILS) as the operation in doubt until it
        is answered. Returns boto3's parsed answer."""
        self.pending = (kind, details, what)
        self.sends = 0
        try:
            resp = call(**params)
            self.one_send(what)
            return resp
        except ClientError as e:
            meta = e.response.get("ResponseMetadata", {})
            raise Unexpected(f"{what}: HTTP {meta.get('HTTPStatusCode')} {e.response.get('Error')}") from e
        except (EndpointConnectionError, ConnectTimeoutError) as e:
            self.after_kill(what, e)
            self.pending = None
            self.log(f"{what}: not sent, the server is gone ({type(e).__name__})")
            raise NotSent() from e
        except (BotoCoreError, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as e:
            self.after_kill(what, e)
            self.stats.in_flight[kind] += 1
            self.log(f"{what}: in flight at the kill ({type(e).__name__})")
            raise Died() from e

    def count_send(self, **_):
        """botocore's before-send event: one more HTTP request on the wire."""
        self.sends += 1

    def one_send(self, what):
        """The model needs one request per operation: a retry would hide an
        attempt cut by the kill behind a second one."""
        if self.sends != 1:
            raise Unexpected(f"{what}: boto3 sent {self.sends} requests for it, not 1")

    def after_kill(self, what, exc):
        """A connection failure is expected only once the server was killed."""
        self.one_send(what)
        kill_time = self.kill_time
        if kill_time is None or time.monotonic() < kill_time:
            raise Unexpected(f"{what}: {exc!r} while the server was still running")

    def acked(self, what):
        kind = self.pending[0]
        self.pending = None
        self.stats.acked[kind] += 1
        self.log(f"{what}: acknowledged")

    def put(self):
        key = self.rng.randrange(KEYS)
        body = (self.new_piece(self.object_size()),)
        what = f"PutObject [{self.name(key)}] <- {show_body(body)}"
        resp = self.exchange(PUT, {"key": key, "body": body}, what, self.s3.put_object,
                             Bucket=BUCKET, Key=self.name(key), Body=body_bytes(body))
        if resp.get("ETag") != f'"{body_md5(body)}"':
            raise Unexpected(f"{what}: ETag {resp.get('ETag')!r} is not the body's MD5")
        self.keys[key] = body
        self.acked(what)

    def copy(self):
        present = [k for k in range(KEYS) if self.keys[k] is not None]
        src = self.rng.choice(present)
        dst = (src + 1 + self.rng.randrange(KEYS - 1)) % KEYS
        body = self.keys[src]
        what = f"CopyObject [{self.name(dst)}] <- [{self.name(src)}] = {show_body(body)}"
        resp = self.exchange(COPY, {"key": dst, "body": body}, what, self.s3.copy_object,
                             Bucket=BUCKET, Key=self.name(dst),
                             CopySource={"Bucket": BUCKET, "Key": self.name(src)})
        etag = resp.get("CopyObjectResult", {}).get("ETag")
        if not etag:
            raise Unexpected(f"{what}: no CopyObjectResult ETag in {resp!r}")
        self.keys[dst] = body
        self.acked(what)

    def delete(self):
        keys = sorted(self.rng.sample(range(KEYS), self.rng.randint(1, 3)))
        what = "DeleteObjects " + " ".join(f"[{self.name(k)}]" for k in keys)
        resp = self.exchange(DELETE, {"keys": keys}, what, self.s3.delete_objects, Bucket=BUCKET,
                             Delete={"Objects": [{"Key": self.name(k)} for k in keys]})
        deleted = sorted(d.get("Key") for d in resp.get("Deleted", []))
        if deleted != sorted(self.name(k) for k in keys) or resp.get("Errors"):
            raise Unexpected(f"{what}: not every key reported deleted: {resp!r}")
        for k in keys:
            self.keys[k] = None
        self.acked(what)

    def create(self):
        key = self.rng.randrange(KEYS)
        what = f"CreateMultipartUpload [{self.name(key)}]"
        resp = self.exchange(CREATE, {"key": key}, what, self.s3.create_multipart_upload,
                             Bucket=BUCKET, Key=self.name(key))
        uid = resp.get("UploadId")
        if not uid:
            raise Unexpected(f"{what}: no UploadId in {resp!r}")
        self.acked(f"{what} = upload {uid}")
        self.uploads.append(Upload(key, uid))

    def part(self):
        up = self.rng.choice(self.uploads)
        number = self.rng.randint(1, MAX_PART_NUMBER)
        piece = self.new_piece(self.part_size())
        what = (f"UploadPart [{self.name(up.key)}] upload {up.id} part {number} "
                f"<- {piece.size}#{piece.seed:x}")
        resp = self.exchange(PART, {"upload": up, "number": number, "piece": piece}, what,
                             self.s3.upload_part, Bucket=BUCKET, Key=self.name(up.key), UploadId=up.id,
                             PartNumber=number, Body=piece.data())
        etag = (resp.get("ETag") or "").strip('"')
        if etag != piece.md5():
            raise Unexpected(f"{what}: ETag {etag!r} is not the part's MD5 {piece.md5()}")
        up.parts[number] = (piece, etag)
        self.acked(what)

    def complete(self):
        up = self.rng.choice([u for u in self.uploads if u.parts])
        numbers = sorted(up.parts)
        last = self.rng.choice(numbers)
        # Every part but the last must be 5 MiB or more.
        chosen = [n for n in numbers if n == last or (n < last and up.parts[n][0].size >= 5 * MiB)]
        body = tuple(up.parts[n][0] for n in chosen)
        what = (f"CompleteMultipartUpload [{self.name(up.key)}] upload {up.id} parts {chosen} "
                f"(of {numbers}) = {show_body(body)}")
        resp = self.exchange(COMPLETE, {"upload": up, "body": body}, what, self.s3.complete_multipart_upload,
                             Bucket=BUCKET, Key=self.name(up.key), UploadId=up.id,
                             MultipartUpload={"Parts": [{"PartNumber": n, "ETag": f'"{up.parts[n][1]}"'}
                                                        for n in chosen]})
        if resp.get("ETag") != multipart_etag(body):
            raise Unexpected(f"{what}: ETag {resp.get('ETag')!r}, expected {multipart_etag(body)}")
        self.keys[up.key] = body
        self.uploads.remove(up)
        self.acked(what)

    def abort(self):
        up = self.rng.choice(self.uploads)
        what = f"AbortMultipartUpload [{self.name(up.key)}] upload {up.id}"
        resp = self.exchange(ABORT, {"upload": up}, what, self.s3.abort_multipart_upload,
                             Bucket=BUCKET, Key=self.name(up.key), UploadId=up.id)
        status = resp.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status != 204:
            raise Unexpected(f"{what}: HTTP {status}, expected 204")
        self.uploads.remove(up)
        self.acked(what)

    # -- after the restart

    def verify(self, s3, objects, listed_uploads):
        """Checks the restarted server against this thread's model, settles the
        operation in doubt by what it reads, and returns the failures found.
        OBJECTS and LISTED_UPLOADS are the bucket's listings; this thread's uploads
        are taken out of LISTED_UPLOADS."""
        failures = []
        kind, details, pending_what = self.pending or (None, {}, "")
        self.pending = None
        before = list(self.keys)

        # Objects: each reads as one of the states it may be in.
        allowed = [[s] for s in self.keys]
        if kind in (PUT, COPY):
            allowed[details["key"]].append(details["body"])
        elif kind == DELETE:
            for k in details["keys"]:
                allowed[k].append(None)
        elif kind == COMPLETE:
            allowed[details["upload"].key].append(details["body"])
        for key in range(KEYS):
            label = f"[{self.name(key)}]"
            try:
                data = s3.get_object(Bucket=BUCKET, Key=self.name(key))["Body"].read()
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") != "NoSuchKey":
                    failures.append(self.report(label, f"GET {label}: {e!r}"))
                    continue
                data = None
            except BotoCoreError as e:
                failures.append(self.report(label, f"GET {label}: {e!r}"))
                continue
            try:
                self.keys[key] = read_as(data, allowed[key])
            except ValueError as e:
                failures.append(self.report(label, f"GET {label}: {e}"))
            listed = self.name(key) in objects
            if listed != (self.keys[key] is not None):
                failures.append(self.report(label, f"ListObjectsV2 {'lists' if listed else 'omits'} {label}, "
                                                   f"GET reads {show(self.keys[key])}"))

        # Uploads: each lists every acknowledged part with its ETag.
        gone = set()
        part_outcome = None
        for up in self.uploads:
            label = f"upload {up.id}"
            may_vanish = kind in (COMPLETE, ABORT) and details["upload"] is up
            try:
                resp = s3.list_parts(Bucket=BUCKET, Key=self.name(up.key), UploadId=up.id)
            except ClientError as e:
                if may_vanish and e.response.get("Error", {}).get("Code") == "NoSuchUpload":
                    gone.add(id(up))
                    continue
                failures.append(self.report(label, f"ListParts of [{self.name(up.key)}] {label}: {e!r}"))
                continue
            if resp.get("IsTruncated"):
                failures.append(self.report(label, f"ListParts of {label} is truncated"))
                continue
            listed = {p["PartNumber"]: (p["ETag"].strip('"'), p["Size"]) for p in resp.get("Parts", [])}
            in_flight = (details["number"], details["piece"]) if kind == PART and details["upload"] is up else None
            in_flight_n = in_flight[0] if in_flight else None
            for n, (piece, etag) in sorted(up.parts.items()):
                if listed.get(n) != (etag, piece.size) and n != in_flight_n:
                    failures.append(self.report(label, f"ListParts of {label}: acknowledged part {n} (ETag {etag}, "
                                                       f"{piece.size} B) is listed as {listed.get(n)}"))
            for n in sorted(listed):
                if n not in up.parts and n != in_flight_n:
                    failures.append(self.report(label, f"ListParts of {label}: part {n} {listed[n]} was never uploaded"))
            if in_flight:
                n, piece = in_flight
                new = (piece.md5(), piece.size)
                old = (up.parts[n][1], up.parts[n][0].size) if n in up.parts else None
                got = listed.get(n)
                if got == new:
                    part_outcome = (up, n, piece)
                elif got != old:
                    failures.append(self.report(label, f"ListParts of {label}: part {n} in flight is listed as "
                                                       f"{got}, neither the old {old} nor the new {new}"))

        # What became of the operation in doubt (a CreateMultipartUpload's upload
        # is looked for in the listing below).
        outcome = None
        if kind in (PUT, COPY):
            key, new = details["key"], details["body"]
            outcome = "either" if same_bytes(before[key], new) else ("applied" if self.keys[key] == new else "not")
        elif kind == DELETE:
            present = [k for k in details["keys"] if before[k] is not None]
            deleted = sum(1 for k in present if self.keys[k] is None)
            outcome = ("either" if not present else "applied" if deleted == len(present)
                       else "not" if deleted == 0 else "partial")
        elif kind == CREATE:
            outcome = "not"
        elif kind == PART:
            outcome = "applied" if part_outcome else "not"
        elif kind == COMPLETE:
            up = details["upload"]
            object_new = self.keys[up.key] == details["body"]
            if object_new != (id(up) in gone):
                failures.append(self.report(
                    f"[{self.name(up.key)}]",
                    f"{pending_what} was in flight: half done after the restart, the object is "
                    f"{show(self.keys[up.key])} and the upload {'is gone' if id(up) in gone else 'is still listed'}"))
            outcome = "applied" if id(up) in gone else "not"
        elif kind == ABORT:
            outcome = "applied" if id(details["upload"]) in gone else "not"
        if part_outcome:
            up, n, piece = part_outcome
            up.parts[n] = (piece, piece.md5())
        self.uploads = [u for u in self.uploads if id(u) not in gone]

        # The bucket's list of uploads holds exactly this thread's (and the one a
        # CreateMultipartUpload in flight may have made).
        for up in self.uploads:
            if (self.name(up.key), up.id) in listed_uploads:
                listed_uploads.discard((self.name(up.key), up.id))
            else:
                failures.append(self.report(f"upload {up.id}", f"ListMultipartUploads omits upload {up.id} "
                                                               f"of [{self.name(up.key)}]"))
        prefix = f"t{self.t}/"
        strays = sorted(u for u in listed_uploads if u[0].startswith(prefix))
        for s in strays:
            listed_uploads.discard(s)
        if kind == CREATE and len(strays) == 1 and strays[0][0] == self.name(details["key"]):
            name, uid = strays[0]
            try:
                parts = s3.list_parts(Bucket=BUCKET, Key=name, UploadId=uid).get("Parts", [])
                if parts:
                    failures.append(self.report(f"[{name}]", f"upload {uid} of {pending_what} lists parts {parts}"))
            except ClientError as e:
                failures.append(self.report(f"[{name}]", f"ListParts of upload {uid} of {pending_what}: {e!r}"))
            self.uploads.append(Upload(details["key"], uid))
            outcome = "applied"
            self.log(f"after the kill: {pending_what} = upload {uid}")
        elif strays:
            failures.append(f"ListMultipartUploads shows uploads of t{self.t} nobody created: {strays}")
        if kind is not None:
            counter = {"applied": self.stats.applied, "not": self.stats.not_applied,
                       "either": self.stats.either, "partial": self.stats.partial}[outcome]
            counter[kind] += 1
            self.log(f"after the kill: {pending_what}: {outcome}")
        return failures


HISTORY_FILE = os.path.join(WORK, "crash-history.txt")


def dump_histories(workers):
    """Every thread's remembered operations, for a failure report (kept with S3T_KEEP=1)."""
    with open(HISTORY_FILE, "w") as f:
        for w in workers:
            f.write(f"== t{w.t}\n")
            f.writelines(f"{h}\n" for h in w.history)
    print(f"  (every thread's last {HISTORY} operations: {HISTORY_FILE})", flush=True)


def list_objects(s3):
    resp = s3.list_objects_v2(Bucket=BUCKET)
    if resp.get("IsTruncated"):
        raise Unexpected("ListObjectsV2: one page should hold every key")
    return {o["Key"] for o in resp.get("Contents", [])}


def list_uploads(s3):
    resp = s3.list_multipart_uploads(Bucket=BUCKET)
    if resp.get("IsTruncated"):
        raise Unexpected("ListMultipartUploads: one page should hold every upload")
    return {(u["Key"], u["UploadId"]) for u in resp.get("Uploads", [])}


def verify_all(workers):
    s3 = new_client()
    try:
        objects = list_objects(s3)
        uploads = list_uploads(s3)
    except (ClientError, BotoCoreError, Unexpected) as e:
        return [f"listing the bucket after the restart: {e!r}"]
    failures = []
    for w in workers:
        try:
            failures.extend(w.verify(s3, objects, uploads))
        except (BotoCoreError, Unexpected) as e:
            failures.append(f"t{w.t}: checking after the restart: {e!r}")
    ours = {w.name(k) for w in workers for k in range(KEYS)}
    for key in sorted(objects - ours):
        failures.append(f"ListObjectsV2 shows {key!r}, which no thread ever wrote")
    if uploads:
        failures.append(f"ListMultipartUploads shows uploads no thread knows: {sorted(uploads)}")
    return failures


# ---------------------------------------------------------------- main

def env_int(name, default):
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        sys.exit(f"{name}={value!r} is not a number")


class Result:
    def __init__(self):
        self.failed = 0
        self.total = 0

    def check(self, ok, what, detail=""):
        self.total += 1
        print(f"  {'ok  ' if ok else 'FAIL'}  {what}", flush=True)
        if not ok:
            self.failed += 1
            for line in str(detail).splitlines():
                print(f"        {line}", flush=True)
        return ok


def main():
    long_mode = os.environ.get("S3T_CRASH_LONG", "") not in ("", "0")
    mode = "long" if long_mode else "ci"
    kills = env_int("S3T_CRASH_KILLS", 2000 if long_mode else 200)
    big_part_percent, threads = (8, (3, 3)) if long_mode else (2, (2, 3))
    seed = env_int("S3T_CRASH_SEED", random.SystemRandom().randrange(2 ** 63))
    print(f"crash-boto3 {mode}: {kills} kills, seed {seed} "
          f"(replay: S3T_CRASH_SEED={seed} S3T_CRASH_KILLS={kills}{' S3T_CRASH_LONG=1' if long_mode else ''}); "
          f"boto3 {boto3.__version__}, server {BIN}, data {DATA}", flush=True)
    r = Result()
    rng = random.Random(seed)
    workers = [Worker(t, big_part_percent) for t in range(threads[1])]
    started = time.monotonic()

    print("\n== start the server and create the bucket", flush=True)
    SERVER.start()
    r.check(True, f"server listening on {SERVER.endpoint}")
    try:
        new_client().create_bucket(Bucket=BUCKET)
        r.check(True, f"CreateBucket {BUCKET}")
    except (ClientError, BotoCoreError) as e:
        r.check(False, f"CreateBucket {BUCKET}", repr(e))
        return r

    print(f"\n== {kills} cycles: client threads, SIGKILL after 20-300 ms, restart, check the model", flush=True)
    done = 0
    for cycle in range(1, kills + 1):
        n = rng.randint(*threads)
        window = rng.randint(20, 300) / 1000
        chosen = sorted(rng.sample(workers, n), key=lambda w: w.t)
        handles = []
        for w in chosen:
            w.cycle = cycle
            w.rng = random.Random(f"{seed}/{cycle}/{w.t}")
            w.s3 = new_client(on_send=w.count_send)
            w.kill_time = None
            th = threading.Thread(target=w.run, name=f"crash-t{w.t}", daemon=True)
            handles.append(th)
        for th in handles:
            th.start()
        time.sleep(window)
        if not SERVER.alive():
            code = SERVER.proc.poll()
            r.check(False, f"cycle {cycle}: the server is still running at the kill",
                    f"it exited by itself with code {code}\n{log_tail()}")
            break
        kill_time = time.monotonic()
        for w in chosen:
            w.kill_time = kill_time
        SERVER.kill()
        stuck = []
        for th in handles:
            th.join(120)
            if th.is_alive():
                stuck.append(th.name)
        if stuck:
            r.check(False, f"cycle {cycle}: every client thread stops after the kill", f"stuck: {stuck}")
            break
        for w in chosen:
            w.s3 = None

        if cycle == kills:
            # The folder as the last kill left it, every object in place.
            code, report = scrub()
            r.check(code == 0, f"tessera scrub --data of the folder left by kill {cycle} exits 0",
                    f"exit code {code}\n{report}")
        try:
            SERVER.start()
        except RuntimeError as e:
            r.check(False, f"cycle {cycle}: the server starts again after the kill", str(e))
            break
        failures = verify_all(workers)
        for w in workers:
            if w.unexpected:
                failures.append(f"t{w.t}: {w.unexpected}\n  t{w.t}'s last operations:\n"
                                + "\n".join(f"    {h}" for h in list(w.history)[-15:]))
                w.unexpected = None
        if failures:
            dump_histories(workers)
            r.check(False, f"after kill {cycle} of {kills} (seed {seed}, {n} threads for "
                           f"{window * 1000:.0f} ms) the server agrees with the model",
                    "\n\n".join(failures) + "\n" + log_tail())
            break
        done = cycle
        if cycle % 25 == 0 or cycle == kills:
            acked = sum(sum(w.stats.acked) for w in workers)
            print(f"  ..    {cycle} kills, {acked} operations acknowledged, "
                  f"{time.monotonic() - started:.0f} s", flush=True)
    if done != kills:
        SERVER.kill()
        return r
    acked_total = sum(sum(w.stats.acked) for w in workers)
    in_doubt = sum(sum(w.stats.in_flight) for w in workers)
    r.check(True, f"{kills} kills: every acknowledged write read back byte-exact, every operation in doubt "
                  f"whole ({acked_total} acknowledged, {in_doubt} in doubt)")

    print("\n== delete every object, abort every upload, restart, no file left", flush=True)
    s3 = new_client()
    for w in workers:
        try:
            resp = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": w.name(k)} for k in range(KEYS)]})
            r.check(len(resp.get("Deleted", [])) == KEYS and not resp.get("Errors"),
                    f"DeleteObjects of t{w.t}'s {KEYS} keys: every key Deleted", repr(resp))
        except (ClientError, BotoCoreError) as e:
            r.check(False, f"DeleteObjects of t{w.t}'s keys", repr(e))
    uploads = list_uploads(s3)
    aborted = 0
    for key, uid in sorted(uploads):
        try:
            resp = s3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid)
            aborted += resp["ResponseMetadata"]["HTTPStatusCode"] == 204
        except (ClientError, BotoCoreError) as e:
            r.check(False, f"AbortMultipartUpload {key} {uid}", repr(e))
    r.check(aborted == len(uploads), f"AbortMultipartUpload of the {len(uploads)} uploads left: 204 each")
    objects, uploads = list_objects(s3), list_uploads(s3)
    r.check(not objects and not uploads, "ListObjectsV2 and ListMultipartUploads are empty",
            f"objects {sorted(objects)}, uploads {sorted(uploads)}")
    blobs_left = len(blob_files())
    code = SERVER.terminate()
    r.check(code == 0, "the server exits with code 0 after SIGTERM", f"exit code {code}")
    # The orphan sweep removes only files older than its start minus 2 s: the last
    # kill's orphans must be that old.
    time.sleep(2.5)
    SERVER.start()
    deadline = time.monotonic() + 10
    while blob_files() and time.monotonic() < deadline:
        time.sleep(0.1)
    files = blob_files()
    r.check(not files, f"no file left under blobs/ after one more restart ({blobs_left} before it)",
            "left: " + " ".join(files[:50]))
    tmp = os.path.join(DATA, "tmp")
    tmp_files = sorted(os.listdir(tmp)) if os.path.isdir(tmp) else []
    r.check(not tmp_files, "start-up empties tmp/", f"left: {tmp_files}")
    code = SERVER.terminate()
    r.check(code == 0, "the server exits with code 0 after SIGTERM", f"exit code {code}")
    code, report = scrub()
    r.check(code == 0, "tessera scrub --data of the emptied folder exits 0", f"exit code {code}\n{report}")

    total = Stats()
    for w in workers:
        total.add(w.stats)
    acked = ", ".join(f"{k} {total.acked[i]}" for i, k in enumerate(KINDS))
    doubts = []
    for i, k in enumerate(KINDS):
        if total.in_flight[i]:
            partial = f", {total.partial[i]} partly" if total.partial[i] else ""
            doubts.append(f"{k} {total.in_flight[i]} ({total.applied[i]} applied, {total.not_applied[i]} not, "
                          f"{total.either[i]} either{partial})")
    settled = sum(total.applied) + sum(total.not_applied) + sum(total.either) + sum(total.partial)
    print(f"\ncrash-boto3 {mode}: {kills} kills in {time.monotonic() - started:.1f} s (seed {seed}); "
          f"{acked_total} operations acknowledged ({acked}); {settled} operations in doubt at a kill settled "
          f"after the restart ({', '.join(doubts) or 'none'}); {blobs_left} blob files before the last "
          f"restart, 0 after", flush=True)
    return r


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        result = main()
    except Exception:  # noqa: BLE001 - a failed step fails the scenario, with its traceback
        traceback.print_exc()
        print(f"\ncrash-boto3: FAILED with an exception\n{log_tail()}")
        sys.exit(1)
    finally:
        SERVER.kill()
    print()
    if result.failed == 0:
        print(f"crash-boto3: all {result.total} checks passed")
        sys.exit(0)
    print(f"crash-boto3: {result.failed} of {result.total} checks FAILED")
    sys.exit(1)
