"""Shared helpers for the Python scenarios (boto3, presigned + curl).

Environment (exported by lib.sh): ENDPOINT, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, FILES_DIR, TEST_BUCKET, BAD_BUCKET.
"""

import base64
import hashlib
import os
import sys
import zlib

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT = os.environ["ENDPOINT"]
FILES_DIR = os.environ["FILES_DIR"]
BUCKET = os.environ.get("TEST_BUCKET", "compat")
BAD_BUCKET = os.environ.get("BAD_BUCKET", "Bad_Bucket")

SIZE_FILES = ["empty.bin", "one.bin", "5mib-minus-1.bin", "5mib.bin", "20mib.bin"]
HOSTILE_KEYS = [
    "hostile/with space.txt",
    "hostile/é/日本語.txt",
    "hostile/plus+sign.txt",
    "hostile/percent%20literal.txt",
    "hostile/amp&ersand.txt",
    'hostile/quote".txt',
    "hostile/a//b.txt",
    "/leading-slash.txt",
    "../x",
]
MARKER_KEY = "dir/"

# Expected answers for the shared key layout (see README.md).
ROOT_PREFIXES = ["../", "/", "dir/", "hostile/", "sizes/"]
HOSTILE_DIRECT = [
    "hostile/amp&ersand.txt",
    "hostile/percent%20literal.txt",
    "hostile/plus+sign.txt",
    'hostile/quote".txt',
    "hostile/with space.txt",
]
HOSTILE_PREFIXES = ["hostile/a/", "hostile/é/"]
SIZE_KEYS_SORTED = [
    "sizes/20mib.bin",
    "sizes/5mib-minus-1.bin",
    "sizes/5mib.bin",
    "sizes/empty.bin",
    "sizes/one.bin",
]


def hostile_content(key):
    return f"key:{key}\n".encode()


def read_file(name):
    with open(os.path.join(FILES_DIR, name), "rb") as f:
        return f.read()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def quoted_md5(data):
    return '"' + hashlib.md5(data).hexdigest() + '"'


def chunks(data, size):
    return [data[i:i + size] for i in range(0, len(data), size)] or [b""]


def multipart_etag(data, part_size):
    """The quoted ETag of DATA uploaded in parts of PART_SIZE: md5(part MD5s)-N."""
    parts = chunks(data, part_size)
    joined = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(joined).hexdigest()}-{len(parts)}"'


def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def composite_crc32(data, part_size):
    """COMPOSITE x-amz-checksum-crc32: CRC32 of the part CRC32s, then -N."""
    parts = chunks(data, part_size)
    joined = b"".join(zlib.crc32(p).to_bytes(4, "big") for p in parts)
    return f"{crc32_b64(joined)}-{len(parts)}"


def byte_sorted(keys):
    return sorted(keys, key=lambda k: k.encode())


def client(**config):
    """A boto3 S3 client for the server under test (path style)."""
    cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config)
    return boto3.client(
        "s3",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        config=cfg,
    )


def error_code(exc):
    return exc.response.get("Error", {}).get("Code")


class Checks:
    def __init__(self, name):
        self.name = name
        self.total = 0
        self.failed = []

    def step(self, what):
        print(f"\n== {what}", flush=True)

    def check(self, ok, what, detail=""):
        self.total += 1
        if ok:
            print(f"  ok    {what}", flush=True)
        else:
            print(f"  FAIL  {what}", flush=True)
            for line in str(detail).splitlines():
                print(f"        {line}", flush=True)
            self.failed.append(what)
        return ok

    def eq(self, what, actual, expected):
        return self.check(
            actual == expected, what, f"expected: {expected!r}\nactual:   {actual!r}"
        )

    def call(self, what, fn, *args, **kwargs):
        """Run one request; a failure is recorded and None returned."""
        try:
            result = fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - any failure is a failed check
            detail = repr(e)
            if isinstance(e, ClientError):
                meta = e.response.get("ResponseMetadata", {})
                detail += f"\nHTTP {meta.get('HTTPStatusCode')} headers {meta.get('HTTPHeaders')}"
                detail += f"\nerror {e.response.get('Error')}"
            self.check(False, what, detail)
            return None
        self.check(True, what)
        return result

    def ran(self, what, fn, *args, **kwargs):
        """Like call, for functions that return None on success (download_file):
        True if it succeeded."""
        ok = []
        self.call(what, lambda: ok.append(fn(*args, **kwargs)))
        return bool(ok)

    def error(self, what, code, fn, *args, **kwargs):
        """The request must fail with this S3 error code (or HTTP status for HEAD)."""
        try:
            result = fn(*args, **kwargs)
        except ClientError as e:
            return self.eq(what, error_code(e), code)
        except Exception as e:  # noqa: BLE001
            return self.check(False, what, f"expected {code}, got {e!r}")
        return self.check(False, what, f"expected {code}, got success: {result!r}")

    def finish(self):
        print()
        if not self.failed:
            print(f"{self.name}: all {self.total} checks passed")
            sys.exit(0)
        print(f"{self.name}: {len(self.failed)} of {self.total} checks FAILED:")
        for f in self.failed:
            print(f"  - {f}")
        sys.exit(1)
