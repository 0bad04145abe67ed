"""The web application of the cors-browser scenario: it serves the page
(s3-compat-tests/browser/page.html) from its own origin and, like a real
application's backend, hands the page presigned URLs made with boto3 (SigV4),
so the browser talks to tessera, on another origin, directly.

    GET  /                     the page
    GET  /presign?op=...&key=...[&upload_id=...&part=...]   {"url": ...}
    GET  /presign-post?key=... {"url": ..., "fields": {...}}, a POST Object form
    POST /setup?cors=full|none|no-expose   the bucket's CORS rules for a phase
    GET  /object?key=...       {"exists": bool, "size": n, "sha256": hex}, read with boto3
    POST /quit                 stops the server

Prints "backend listening on http://127.0.0.1:PORT" once it serves.
Environment (lib.sh): ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
FILES_DIR, TEST_BUCKET.
"""

import hashlib
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from botocore.exceptions import ClientError

from compat import BUCKET, client

PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "browser", "page.html")
S3 = client(signature_version="s3v4")
# The page's own origin, set once the port is known: the origin the rules allow.
PAGE_ORIGIN = None
PRESIGN_OPS = {
    # operation: (HTTP method, the query parameters it signs besides Bucket and Key)
    "put_object": ("PUT", {}),
    "get_object": ("GET", {}),
    "create_multipart_upload": ("POST", {}),
    "upload_part": ("PUT", {"upload_id": "UploadId", "part": "PartNumber"}),
    "complete_multipart_upload": ("POST", {"upload_id": "UploadId"}),
}


def rules(mode):
    """The CORS rules of a phase: `full` lets the page's origin do what it
    needs and read ETags; `no-expose` is the same without ExposeHeaders.
    MaxAgeSeconds 0: the browser keeps no preflight answer from one phase
    to the next."""
    rule = {
        "AllowedOrigins": [PAGE_ORIGIN],
        "AllowedMethods": ["GET", "PUT", "POST", "HEAD"],
        "AllowedHeaders": ["content-type", "x-amz-*"],
        "MaxAgeSeconds": 0,
    }
    if mode == "full":
        rule["ExposeHeaders"] = ["ETag", "x-amz-request-id"]
    return {"CORSRules": [rule]}


def setup(mode):
    try:
        S3.create_bucket(Bucket=BUCKET)
    except ClientError as e:
        if e.response["Error"]["Code"] != "BucketAlreadyOwnedByYou":
            raise
    if mode == "none":
        S3.delete_bucket_cors(Bucket=BUCKET)
    else:
        S3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration=rules(mode))
    return {"cors": mode}


def presign(query):
    method, extra = PRESIGN_OPS[query["op"]]
    params = {"Bucket": BUCKET, "Key": query["key"]}
    for name, param in extra.items():
        params[param] = int(query[name]) if param == "PartNumber" else query[name]
    url = S3.generate_presigned_url(query["op"], Params=params, HttpMethod=method, ExpiresIn=600)
    return {"url": url}


def presign_post(query):
    """A signed form for a browser upload (POST Object): answered with a
    PostResponse document (201) and limited to 16 MiB."""
    return S3.generate_presigned_post(
        BUCKET, query["key"],
        Fields={"success_action_status": "201", "x-amz-meta-from": "form"},
        Conditions=[{"success_action_status": "201"}, {"x-amz-meta-from": "form"},
                    ["content-length-range", 1, 16 << 20]],
        ExpiresIn=600)


def describe(key):
    try:
        body = S3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    except ClientError as e:
        if e.response["Error"]["Code"] == "NoSuchKey":
            return {"exists": False}
        raise
    return {"exists": True, "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.send_header("cache-control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def route(self):
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if self.command == "GET" and url.path == "/":
            with open(PAGE, "rb") as f:
                return self.reply(200, f.read(), "text/html; charset=utf-8")
        if self.command == "GET" and url.path == "/presign":
            return self.reply(200, presign(query))
        if self.command == "GET" and url.path == "/presign-post":
            return self.reply(200, presign_post(query))
        if self.command == "GET" and url.path == "/object":
            return self.reply(200, describe(query["key"]))
        if self.command == "POST" and url.path == "/setup":
            return self.reply(200, setup(query["cors"]))
        if self.command == "POST" and url.path == "/quit":
            self.reply(200, {"bye": True})
            return threading.Thread(target=self.server.shutdown).start()
        return self.reply(404, {"error": f"no route {self.command} {url.path}"})

    def do_GET(self):
        self.handle_safely()

    def do_POST(self):
        self.handle_safely()

    def handle_safely(self):
        try:
            self.route()
        except Exception as e:  # the driver prints it; the page sees a 500
            print(f"backend: {self.command} {self.path}: {e!r}", file=sys.stderr, flush=True)
            self.reply(500, {"error": repr(e)})

    def log_message(self, *args):
        pass


def main():
    global PAGE_ORIGIN
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    PAGE_ORIGIN = f"http://127.0.0.1:{server.server_address[1]}"
    print(f"backend listening on {PAGE_ORIGIN}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
