"""boto3 ACLs, bucket policies and anonymous access against the server at $ENDPOINT
(see README.md).

Four clients: root (the server's own key), alice and bob (users made by
`tessera user add`, their keys in the JSON file $ACL_USERS_FILE), and an anonymous
one (botocore.UNSIGNED: no Authorization header at all), plus plain urllib GETs.

What S3 documents, and what is checked here:
- a canned ACL on CreateBucket / PutObject (x-amz-acl): public-read lets anyone list
  the bucket or read the object; a private object in a public bucket stays 403
  AccessDenied for the anonymous requester (a missing key there is 404 NoSuchKey,
  since they may list); nothing lets them write or ListBuckets;
- GetBucketAcl / GetObjectAcl: Owner (ID = the canonical id, DisplayName = the user
  name), the Grants (CanonicalUser with ID and DisplayName, Group with URI);
- PutBucketAcl with grant headers (x-amz-grant-read: id=..., emailAddress=...) or an
  AccessControlPolicy document: it replaces the whole list; READ on a bucket lists it
  but does not read its objects; WRITE lets one put objects; an object written by
  bob with bucket-owner-full-control is readable by alice (the bucket's owner), one
  without is not (ACLs enabled: the writer owns the object);
- PutObjectAcl: public-read makes one object of a private bucket readable by anyone;
  it needs WRITE_ACP on the object (bob without it: 403, with it: allowed);
  GetObjectAcl needs READ_ACP; on a versioned bucket each version has its own ACL;
- bucket policies: Principal "*" s3:GetObject on BUCKET/public/* opens those keys
  to urllib GETs and no other; Deny wins over Allow; a principal given by IAM ARN;
  GetBucketPolicy answers the document put; a Condition is refused (MalformedPolicy:
  Tessera does not evaluate conditions and says so); DeleteBucketPolicy, then
  NoSuchBucketPolicy; only the owner may put one;
- another user cannot read, list, copy from, change the ACL of, or delete the bucket
  of alice's private resources (403 AccessDenied); root may do anything.
"""

import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import ClientError

from compat import ENDPOINT, Checks, client, error_code

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTH_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"

PUB = "acl-public"        # alice, public-read
PRIV = "acl-private"      # alice, private, then grants to bob
POL = "acl-policy"        # alice, private, with a bucket policy
VERS = "acl-versioned"    # alice, versioning Enabled
OPEN = "acl-open"         # alice, public-read-write
BOBS = "acl-bob"          # bob's own bucket


def md5(data):
    return hashlib.md5(data).hexdigest()


def user_client(keys):
    cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    return boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1",
                        aws_access_key_id=keys["access_key_id"],
                        aws_secret_access_key=keys["secret_access_key"], config=cfg)


def anonymous_client():
    cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                 signature_version=botocore.UNSIGNED)
    return boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1", config=cfg)


# No proxy: the request must reach the server under test as it is.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(bucket, key):
    """A plain unsigned GET: (status, body, S3 error code or None)."""
    url = f"{ENDPOINT}/{bucket}/{urllib.parse.quote(key)}"
    try:
        with _OPENER.open(url, timeout=30) as r:
            return r.status, r.read(), None
    except urllib.error.HTTPError as e:
        body = e.read()
        code = None
        if b"<Code>" in body:
            code = body.split(b"<Code>", 1)[1].split(b"</Code>", 1)[0].decode()
        return e.code, body, code


def grants_of(acl):
    """boto3's Grants as a sorted list of (type, id or uri, permission)."""
    out = []
    for g in acl.get("Grants", []):
        grantee = g.get("Grantee", {})
        who = grantee.get("ID") if grantee.get("Type") == "CanonicalUser" else grantee.get("URI")
        out.append((grantee.get("Type"), who, g.get("Permission")))
    return sorted(out, key=lambda t: tuple(x or "" for x in t))


def display_names(acl):
    """{canonical id: DisplayName} of the CanonicalUser grantees."""
    return {g["Grantee"].get("ID"): g["Grantee"].get("DisplayName")
            for g in acl.get("Grants", []) if g.get("Grantee", {}).get("Type") == "CanonicalUser"}


def main():
    c = Checks("acl-boto3")
    with open(os.environ["ACL_USERS_FILE"]) as f:
        users = json.load(f)
    alice_keys, bob_keys = users["alice"], users["bob"]
    ALICE, BOB = alice_keys["canonical_id"], bob_keys["canonical_id"]
    bob_email = bob_keys["email"]

    root = client()
    alice = user_client(alice_keys)
    bob = user_client(bob_keys)
    anon = anonymous_client()
    print(f"boto3 {boto3.__version__}, endpoint {ENDPOINT}")
    print(f"alice {alice_keys['access_key_id']} canonical id {ALICE}")
    print(f"bob   {bob_keys['access_key_id']} canonical id {BOB} ({bob_email})")

    def status_of(out):
        return out.get("ResponseMetadata", {}).get("HTTPStatusCode")

    def fails(what, code, status, fn, **kw):
        """The request must fail with HTTP STATUS and error CODE (the status for a HEAD)."""
        try:
            result = fn(**kw)
        except ClientError as e:
            meta = e.response.get("ResponseMetadata", {})
            got = (error_code(e), meta.get("HTTPStatusCode"))
            return c.check(got == (code, status), what,
                           f"expected: {status} {code}\nactual:   {got[1]} {got[0]}\n"
                           f"error {e.response.get('Error')}")
        except Exception as e:  # noqa: BLE001 - any other failure is a failed check
            return c.check(False, what, f"expected {status} {code}, got {e!r}")
        return c.check(False, what, f"expected {status} {code}, got success: {result!r}")

    def denied(what, fn, **kw):
        return fails(f"{what}: 403 AccessDenied", "AccessDenied", 403, fn, **kw)

    def reads(what, s3, bucket, key, data, **kw):
        """GetObject must give DATA (compared by MD5 and length)."""
        out = c.call(f"{what}: GetObject {bucket}/{key}", s3.get_object, Bucket=bucket, Key=key, **kw)
        if out:
            body = out["Body"].read()
            c.check(md5(body) == md5(data) and len(body) == len(data),
                    f"{what}: the bytes of {bucket}/{key} ({len(data)} B, md5 {md5(data)[:12]}…)",
                    f"expected {len(data)} B md5 {md5(data)}\nactual   {len(body)} B md5 {md5(body)}")
        return out

    def url_gives(what, bucket, key, status, data=None, code=None):
        got_status, body, got_code = http_get(bucket, key)
        detail = f"expected HTTP {status}{' ' + code if code else ''}\nactual   HTTP {got_status} {got_code}\n" \
                 f"body: {body[:300]!r}"
        if data is not None:
            ok = got_status == status and md5(body) == md5(data)
            detail += f"\nmd5 expected {md5(data)}, got {md5(body)}"
        else:
            ok = got_status == status and (code is None or got_code == code)
        return c.check(ok, f"{what}: urllib GET /{bucket}/{key} -> {status}{' ' + code if code else ''}", detail)

    def acl_is(what, acl, owner, owner_name, expected):
        """An ACL boto3 parsed: Owner ID and DisplayName, and exactly the EXPECTED grants."""
        if not acl:
            return
        c.eq(f"{what}: Owner.ID", acl.get("Owner", {}).get("ID"), owner)
        c.eq(f"{what}: Owner.DisplayName", acl.get("Owner", {}).get("DisplayName"), owner_name)
        c.eq(f"{what}: the grants", grants_of(acl), sorted(expected, key=lambda t: tuple(x or "" for x in t)))
        names = {ALICE: "alice", BOB: "bob"}
        shown = display_names(acl)
        c.eq(f"{what}: each CanonicalUser grantee's DisplayName", shown, {i: names.get(i, i) for i in shown})

    def keys_of(out):
        return [o["Key"] for o in (out or {}).get("Contents", [])]

    def owner_full(who):
        return ("CanonicalUser", who, "FULL_CONTROL")

    public_read = [owner_full(ALICE), ("Group", ALL_USERS, "READ")]
    private = [owner_full(ALICE)]

    # ------------------------------------------------------------------ users
    c.step("the users: ListBuckets needs a signature; a new user has no buckets")
    denied("anonymous ListBuckets", anon.list_buckets)
    out = c.call("alice ListBuckets", alice.list_buckets)
    if out:
        c.eq("alice ListBuckets: no buckets yet", [b["Name"] for b in out.get("Buckets", [])], [])
        c.eq("alice ListBuckets: Owner.ID is alice's canonical id", out.get("Owner", {}).get("ID"), ALICE)
        c.check(out.get("Owner", {}).get("DisplayName") in (None, "alice"),
                "alice ListBuckets: Owner.DisplayName absent or 'alice' (the name the ACLs show)",
                f"actual: {out.get('Owner', {}).get('DisplayName')!r}")

    # ------------------------------------------------------------------ public-read bucket
    c.step(f"alice: CreateBucket {PUB} ACL=public-read; objects public-read and private; the anonymous client")
    c.call(f"alice CreateBucket {PUB} ACL='public-read'", alice.create_bucket, Bucket=PUB, ACL="public-read")
    pub_data, priv_data = os.urandom(100_000), os.urandom(3000)
    c.call("alice PutObject pub.bin ACL='public-read'", alice.put_object, Bucket=PUB, Key="pub.bin",
           Body=pub_data, ACL="public-read")
    c.call("alice PutObject private.bin (no ACL: private)", alice.put_object, Bucket=PUB, Key="private.bin",
           Body=priv_data)
    out = c.call(f"anonymous ListObjectsV2 {PUB}", anon.list_objects_v2, Bucket=PUB)
    if out:
        c.eq(f"anonymous ListObjectsV2 {PUB}: both keys", keys_of(out), ["private.bin", "pub.bin"])
    out = c.call(f"anonymous ListObjects (v1) {PUB}", anon.list_objects, Bucket=PUB)
    if out:
        c.eq(f"anonymous ListObjects (v1) {PUB}: both keys", keys_of(out), ["private.bin", "pub.bin"])
    reads("anonymous", anon, PUB, "pub.bin", pub_data)
    out = c.call("anonymous HeadObject pub.bin", anon.head_object, Bucket=PUB, Key="pub.bin")
    if out:
        c.eq("anonymous HeadObject pub.bin: ContentLength", out.get("ContentLength"), len(pub_data))
        c.eq("anonymous HeadObject pub.bin: ETag", out.get("ETag"), f'"{md5(pub_data)}"')
    out = c.call("anonymous GetObject pub.bin Range=bytes=10-19", anon.get_object, Bucket=PUB, Key="pub.bin",
                 Range="bytes=10-19")
    if out:
        c.eq("anonymous ranged GET: the 10 bytes", out["Body"].read(), pub_data[10:20])
    denied("anonymous GetObject private.bin", anon.get_object, Bucket=PUB, Key="private.bin")
    fails("anonymous HeadObject private.bin: 403", "403", 403, anon.head_object, Bucket=PUB, Key="private.bin")
    fails("anonymous GetObject of a missing key in a bucket they may list: 404 NoSuchKey", "NoSuchKey", 404,
          anon.get_object, Bucket=PUB, Key="missing.bin")
    url_gives("anonymous", PUB, "pub.bin", 200, data=pub_data)
    url_gives("anonymous", PUB, "private.bin", 403, code="AccessDenied")
    denied("anonymous PutObject into a public-read bucket", anon.put_object, Bucket=PUB, Key="anon.bin",
           Body=b"nope")
    denied("anonymous DeleteObject pub.bin", anon.delete_object, Bucket=PUB, Key="pub.bin")
    reads("after the refused anonymous DELETE", alice, PUB, "pub.bin", pub_data)
    denied("anonymous CreateBucket", anon.create_bucket, Bucket="acl-anon-bucket")
    denied("anonymous GetBucketAcl (public-read grants READ, not READ_ACP)", anon.get_bucket_acl, Bucket=PUB)
    denied("anonymous GetObjectAcl pub.bin", anon.get_object_acl, Bucket=PUB, Key="pub.bin")
    fails("anonymous GetObject in a missing bucket: 404 NoSuchBucket", "NoSuchBucket", 404,
          anon.get_object, Bucket="acl-no-such-bucket", Key="x")
    reads("bob (public-read: any signed user too)", bob, PUB, "pub.bin", pub_data)
    denied("bob GetObject private.bin", bob.get_object, Bucket=PUB, Key="private.bin")

    # ------------------------------------------------------------------ the ACL documents
    c.step("GetBucketAcl / GetObjectAcl as boto3 parses them")
    acl = c.call(f"alice GetBucketAcl {PUB}", alice.get_bucket_acl, Bucket=PUB)
    acl_is(f"GetBucketAcl {PUB}", acl, ALICE, "alice", public_read)
    acl = c.call("alice GetObjectAcl pub.bin", alice.get_object_acl, Bucket=PUB, Key="pub.bin")
    acl_is("GetObjectAcl pub.bin", acl, ALICE, "alice", public_read)
    acl = c.call("alice GetObjectAcl private.bin", alice.get_object_acl, Bucket=PUB, Key="private.bin")
    acl_is("GetObjectAcl private.bin", acl, ALICE, "alice", private)
    acl = c.call(f"root GetBucketAcl {PUB} (root may read any ACL)", root.get_bucket_acl, Bucket=PUB)
    acl_is(f"root GetBucketAcl {PUB}", acl, ALICE, "alice", public_read)
    acl = c.call("root GetObjectAcl pub.bin", root.get_object_acl, Bucket=PUB, Key="pub.bin")
    acl_is("root GetObjectAcl pub.bin (the owner is alice, whoever asks)", acl, ALICE, "alice", public_read)
    fails("GetObjectAcl of a missing key: 404 NoSuchKey", "NoSuchKey", 404, alice.get_object_acl, Bucket=PUB,
          Key="missing.bin")

    # ------------------------------------------------------------------ private bucket, grants to bob
    c.step(f"{PRIV} (private): bob is refused; PutBucketAcl GrantRead='id=<bob>' lets him list, not read")
    c.call(f"alice CreateBucket {PRIV}", alice.create_bucket, Bucket=PRIV)
    secret = os.urandom(5000)
    c.call("alice PutObject secret.bin", alice.put_object, Bucket=PRIV, Key="secret.bin", Body=secret)
    acl = c.call(f"alice GetBucketAcl {PRIV}", alice.get_bucket_acl, Bucket=PRIV)
    acl_is(f"GetBucketAcl {PRIV} (private)", acl, ALICE, "alice", private)
    denied(f"bob ListObjectsV2 {PRIV}", bob.list_objects_v2, Bucket=PRIV)
    fails(f"bob HeadBucket {PRIV}: 403", "403", 403, bob.head_bucket, Bucket=PRIV)
    denied(f"bob GetObject {PRIV}/secret.bin", bob.get_object, Bucket=PRIV, Key="secret.bin")
    denied(f"bob GetObject {PRIV}/missing.bin (a missing key is not revealed)", bob.get_object, Bucket=PRIV,
           Key="missing.bin")
    denied(f"anonymous ListObjectsV2 {PRIV}", anon.list_objects_v2, Bucket=PRIV)
    url_gives("anonymous", PRIV, "secret.bin", 403, code="AccessDenied")

    out = c.call(f"alice PutBucketAcl {PRIV} GrantRead='id={BOB[:12]}…'", alice.put_bucket_acl, Bucket=PRIV,
                 GrantRead=f"id={BOB}")
    acl = c.call(f"alice GetBucketAcl {PRIV}", alice.get_bucket_acl, Bucket=PRIV)
    acl_is(f"GetBucketAcl {PRIV} after GrantRead (the headers replace the list)", acl, ALICE, "alice",
           [("CanonicalUser", BOB, "READ")])
    out = c.call(f"bob ListObjectsV2 {PRIV} (READ on the bucket)", bob.list_objects_v2, Bucket=PRIV)
    if out:
        c.eq(f"bob ListObjectsV2 {PRIV}: the keys", keys_of(out), ["secret.bin"])
    c.call(f"bob HeadBucket {PRIV}", bob.head_bucket, Bucket=PRIV)
    denied(f"bob GetObject {PRIV}/secret.bin (bucket READ is not object READ)", bob.get_object, Bucket=PRIV,
           Key="secret.bin")
    fails(f"bob GetObject {PRIV}/missing.bin, now that he may list: 404 NoSuchKey", "NoSuchKey", 404,
          bob.get_object, Bucket=PRIV, Key="missing.bin")
    denied(f"bob PutObject into {PRIV} (READ is not WRITE)", bob.put_object, Bucket=PRIV, Key="bob.bin",
           Body=b"x")
    denied(f"bob GetBucketAcl {PRIV} (no READ_ACP)", bob.get_bucket_acl, Bucket=PRIV)
    denied(f"bob PutBucketAcl {PRIV} (no WRITE_ACP)", bob.put_bucket_acl, Bucket=PRIV, ACL="public-read")
    denied(f"anonymous ListObjectsV2 {PRIV} (the grant is bob's only)", anon.list_objects_v2, Bucket=PRIV)

    c.call(f"alice PutBucketAcl {PRIV} GrantRead='emailAddress=\"{bob_email}\"'", alice.put_bucket_acl,
           Bucket=PRIV, GrantRead=f'emailAddress="{bob_email}"')
    acl = c.call(f"alice GetBucketAcl {PRIV}", alice.get_bucket_acl, Bucket=PRIV)
    acl_is(f"GetBucketAcl {PRIV} after a grant by e-mail (shown by canonical id)", acl, ALICE, "alice",
           [("CanonicalUser", BOB, "READ")])
    fails("PutBucketAcl GrantRead='emailAddress=\"nobody@example.com\"': 400 UnresolvableGrantByEmailAddress",
          "UnresolvableGrantByEmailAddress", 400, alice.put_bucket_acl, Bucket=PRIV,
          GrantRead='emailAddress="nobody@example.com"')
    fails("PutBucketAcl GrantRead='id=<unknown id>': 400 InvalidArgument", "InvalidArgument", 400,
          alice.put_bucket_acl, Bucket=PRIV, GrantRead="id=" + "0" * 64)
    fails("PutBucketAcl ACL='public-read' and GrantRead together: 400 InvalidRequest", "InvalidRequest", 400,
          alice.put_bucket_acl, Bucket=PRIV, ACL="public-read", GrantRead=f"id={BOB}")
    fails("PutBucketAcl ACL='no-such-canned-acl': 400 InvalidArgument", "InvalidArgument", 400,
          alice.put_bucket_acl, Bucket=PRIV, ACL="no-such-canned-acl")
    acl = c.call(f"alice GetBucketAcl {PRIV} after the refused requests", alice.get_bucket_acl, Bucket=PRIV)
    acl_is(f"GetBucketAcl {PRIV}: unchanged", acl, ALICE, "alice", [("CanonicalUser", BOB, "READ")])

    # ------------------------------------------------------------------ AccessControlPolicy: WRITE to bob
    c.step(f"PutBucketAcl AccessControlPolicy (boto3's dict) granting bob WRITE; bob writes into {PRIV}")
    policy_doc = {
        "Owner": {"ID": ALICE, "DisplayName": "alice"},
        "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": ALICE}, "Permission": "FULL_CONTROL"},
            {"Grantee": {"Type": "CanonicalUser", "ID": BOB}, "Permission": "WRITE"},
            {"Grantee": {"Type": "Group", "URI": AUTH_USERS}, "Permission": "READ_ACP"},
        ],
    }
    c.call(f"alice PutBucketAcl {PRIV} AccessControlPolicy={{alice FULL_CONTROL, bob WRITE, "
           "AuthenticatedUsers READ_ACP}}", alice.put_bucket_acl, Bucket=PRIV, AccessControlPolicy=policy_doc)
    acl = c.call(f"alice GetBucketAcl {PRIV}", alice.get_bucket_acl, Bucket=PRIV)
    acl_is(f"GetBucketAcl {PRIV} after the document", acl, ALICE, "alice",
           [owner_full(ALICE), ("CanonicalUser", BOB, "WRITE"), ("Group", AUTH_USERS, "READ_ACP")])
    acl = c.call(f"bob GetBucketAcl {PRIV} (AuthenticatedUsers READ_ACP)", bob.get_bucket_acl, Bucket=PRIV)
    acl_is(f"bob GetBucketAcl {PRIV}", acl, ALICE, "alice",
           [owner_full(ALICE), ("CanonicalUser", BOB, "WRITE"), ("Group", AUTH_USERS, "READ_ACP")])
    denied(f"anonymous GetBucketAcl {PRIV} (AuthenticatedUsers is not anonymous)", anon.get_bucket_acl,
           Bucket=PRIV)
    denied(f"bob ListObjectsV2 {PRIV} (the document replaced his READ)", bob.list_objects_v2, Bucket=PRIV)
    bob_full = os.urandom(7000)
    c.call(f"bob PutObject {PRIV}/from-bob.bin ACL='bucket-owner-full-control'", bob.put_object, Bucket=PRIV,
           Key="from-bob.bin", Body=bob_full, ACL="bucket-owner-full-control")
    reads("alice (bucket-owner-full-control)", alice, PRIV, "from-bob.bin", bob_full)
    acl = c.call("alice GetObjectAcl from-bob.bin", alice.get_object_acl, Bucket=PRIV, Key="from-bob.bin")
    acl_is("GetObjectAcl from-bob.bin (bob owns it, alice has full control)", acl, BOB, "bob",
           [owner_full(BOB), owner_full(ALICE)])
    bob_only = os.urandom(600)
    c.call(f"bob PutObject {PRIV}/bob-private.bin (no ACL: bob's alone)", bob.put_object, Bucket=PRIV,
           Key="bob-private.bin", Body=bob_only)
    reads("bob (his own object)", bob, PRIV, "bob-private.bin", bob_only)
    denied("alice GetObject bob-private.bin (ACLs enabled: the writer owns it)", alice.get_object, Bucket=PRIV,
           Key="bob-private.bin")
    out = c.call(f"alice ListObjectsV2 {PRIV} FetchOwner=True", alice.list_objects_v2, Bucket=PRIV,
                 FetchOwner=True)
    if out:
        owners = {o["Key"]: o.get("Owner", {}).get("ID") for o in out.get("Contents", [])}
        c.eq(f"ListObjectsV2 {PRIV} FetchOwner: each object's Owner.ID", owners,
             {"bob-private.bin": BOB, "from-bob.bin": BOB, "secret.bin": ALICE})
        names = {o["Key"]: o.get("Owner", {}).get("DisplayName") for o in out.get("Contents", [])}
        c.check(all(names.get(k) in (None, n) for k, n in
                    (("bob-private.bin", "bob"), ("from-bob.bin", "bob"), ("secret.bin", "alice"))),
                f"ListObjectsV2 {PRIV} FetchOwner: each Owner.DisplayName absent or the user's name (as in the ACLs)",
                f"actual: {names}")
    denied(f"bob DeleteBucket {PRIV} (WRITE is not ownership)", bob.delete_bucket, Bucket=PRIV)

    fails("PutBucketAcl with a document whose Owner is bob: 403 AccessDenied (an ACL cannot give a bucket away)",
          "AccessDenied", 403, alice.put_bucket_acl, Bucket=PRIV,
          AccessControlPolicy={"Owner": {"ID": BOB}, "Grants": [
              {"Grantee": {"Type": "CanonicalUser", "ID": BOB}, "Permission": "FULL_CONTROL"}]})
    fails("PutBucketAcl with a document granting 'READ_ALL': 400 MalformedACLError", "MalformedACLError", 400,
          alice.put_bucket_acl, Bucket=PRIV,
          AccessControlPolicy={"Owner": {"ID": ALICE}, "Grants": [
              {"Grantee": {"Type": "CanonicalUser", "ID": BOB}, "Permission": "READ_ALL"}]})
    fails("PutBucketAcl with a Group grantee of an unknown URI: 400 InvalidArgument", "InvalidArgument", 400,
          alice.put_bucket_acl, Bucket=PRIV,
          AccessControlPolicy={"Owner": {"ID": ALICE}, "Grants": [
              {"Grantee": {"Type": "Group", "URI": "http://example.com/nobody"}, "Permission": "READ"}]})
    c.call("bob PutObject again after the refused ACL changes (WRITE kept)", bob.put_object, Bucket=PRIV,
           Key="from-bob-2.bin", Body=b"second", ACL="bucket-owner-read")
    acl = c.call("bob GetObjectAcl from-bob-2.bin (bucket-owner-read)", bob.get_object_acl, Bucket=PRIV,
                 Key="from-bob-2.bin")
    acl_is("GetObjectAcl from-bob-2.bin", acl, BOB, "bob", [owner_full(BOB), ("CanonicalUser", ALICE, "READ")])
    reads("alice (bucket-owner-read)", alice, PRIV, "from-bob-2.bin", b"second")
    denied("alice GetObjectAcl from-bob-2.bin (READ, not READ_ACP)", alice.get_object_acl, Bucket=PRIV,
           Key="from-bob-2.bin")
    denied("alice PutObjectAcl from-bob-2.bin (READ, not WRITE_ACP)", alice.put_object_acl, Bucket=PRIV,
           Key="from-bob-2.bin", ACL="private")

    # ------------------------------------------------------------------ PutObjectAcl
    c.step("PutObjectAcl: a private object made public-read, WRITE_ACP needed to change it")
    denied("anonymous GetObject secret.bin (before PutObjectAcl)", anon.get_object, Bucket=PRIV,
           Key="secret.bin")
    out = c.call("alice PutObjectAcl secret.bin ACL='public-read'", alice.put_object_acl, Bucket=PRIV,
                 Key="secret.bin", ACL="public-read")
    if out:
        c.eq("PutObjectAcl: HTTP 200", status_of(out), 200)
    reads("anonymous, after PutObjectAcl public-read (the bucket stays private)", anon, PRIV, "secret.bin", secret)
    url_gives("anonymous, after PutObjectAcl public-read", PRIV, "secret.bin", 200, data=secret)
    denied(f"anonymous ListObjectsV2 {PRIV} (still private)", anon.list_objects_v2, Bucket=PRIV)
    acl = c.call("alice GetObjectAcl secret.bin", alice.get_object_acl, Bucket=PRIV, Key="secret.bin")
    acl_is("GetObjectAcl secret.bin after public-read", acl, ALICE, "alice", public_read)
    denied("bob PutObjectAcl secret.bin ACL='public-read-write' (no WRITE_ACP; bucket WRITE does not count)",
           bob.put_object_acl, Bucket=PRIV, Key="secret.bin", ACL="public-read-write")
    denied("bob GetObjectAcl secret.bin (no READ_ACP)", bob.get_object_acl, Bucket=PRIV, Key="secret.bin")
    denied("anonymous PutObjectAcl secret.bin ACL='private'", anon.put_object_acl, Bucket=PRIV, Key="secret.bin",
           ACL="private")
    acl = c.call("alice GetObjectAcl secret.bin after the refused requests", alice.get_object_acl, Bucket=PRIV,
                 Key="secret.bin")
    acl_is("GetObjectAcl secret.bin: unchanged", acl, ALICE, "alice", public_read)
    c.call("alice PutObjectAcl secret.bin GrantWriteACP='id=<bob>', GrantRead='uri=AllUsers'",
           alice.put_object_acl, Bucket=PRIV, Key="secret.bin", GrantWriteACP=f"id={BOB}",
           GrantRead=f'uri="{ALL_USERS}"')
    acl = c.call("alice GetObjectAcl secret.bin", alice.get_object_acl, Bucket=PRIV, Key="secret.bin")
    acl_is("GetObjectAcl secret.bin with bob's WRITE_ACP", acl, ALICE, "alice",
           [("CanonicalUser", BOB, "WRITE_ACP"), ("Group", ALL_USERS, "READ")])
    c.call("bob PutObjectAcl secret.bin ACL='private' (now with WRITE_ACP)", bob.put_object_acl, Bucket=PRIV,
           Key="secret.bin", ACL="private")
    acl = c.call("alice GetObjectAcl secret.bin", alice.get_object_acl, Bucket=PRIV, Key="secret.bin")
    acl_is("GetObjectAcl secret.bin after bob's 'private' (alice still owns it)", acl, ALICE, "alice", private)
    denied("anonymous GetObject secret.bin (private again)", anon.get_object, Bucket=PRIV, Key="secret.bin")
    url_gives("anonymous, private again", PRIV, "secret.bin", 403, code="AccessDenied")
    fails("PutObjectAcl of a missing key: 404 NoSuchKey", "NoSuchKey", 404, alice.put_object_acl, Bucket=PRIV,
          Key="missing.bin", ACL="public-read")
    c.call(f"alice PutObjectAcl {PUB}/pub.bin AccessControlPolicy={{alice FULL_CONTROL, bob READ}}",
           alice.put_object_acl, Bucket=PUB, Key="pub.bin", AccessControlPolicy={
               "Owner": {"ID": ALICE},
               "Grants": [{"Grantee": {"Type": "CanonicalUser", "ID": ALICE}, "Permission": "FULL_CONTROL"},
                          {"Grantee": {"Type": "CanonicalUser", "ID": BOB}, "Permission": "READ"}]})
    denied(f"anonymous GetObject {PUB}/pub.bin (no longer public-read)", anon.get_object, Bucket=PUB,
           Key="pub.bin")
    reads("bob (READ by the document)", bob, PUB, "pub.bin", pub_data)

    # ------------------------------------------------------------------ copies, multipart, presigned URLs
    c.step("CopyObject and CreateMultipartUpload take the request's ACL (never the source's); presigned URLs")
    c.call("alice CopyObject secret.bin -> copy-public.bin ACL='public-read'", alice.copy_object, Bucket=PRIV,
           Key="copy-public.bin", CopySource={"Bucket": PRIV, "Key": "secret.bin"}, ACL="public-read")
    url_gives("anonymous, a copy made with ACL=public-read", PRIV, "copy-public.bin", 200, data=secret)
    c.call(f"alice CopyObject {PUB}/pub.bin (public-read) -> {PRIV}/copy-private.bin without ACL",
           alice.copy_object, Bucket=PRIV, Key="copy-private.bin", CopySource={"Bucket": PUB, "Key": "pub.bin"})
    url_gives("anonymous, a copy made without ACL (the source's is not copied)", PRIV, "copy-private.bin", 403,
              code="AccessDenied")
    acl = c.call("alice GetObjectAcl copy-private.bin", alice.get_object_acl, Bucket=PRIV, Key="copy-private.bin")
    acl_is("GetObjectAcl copy-private.bin", acl, ALICE, "alice", private)
    mp_data = os.urandom(5 * 1024 * 1024 + 1000)
    mpu = c.call("alice CreateMultipartUpload mp.bin ACL='public-read'", alice.create_multipart_upload,
                 Bucket=PRIV, Key="mp.bin", ACL="public-read")
    if mpu:
        parts = []
        for n, chunk in ((1, mp_data[:5 * 1024 * 1024]), (2, mp_data[5 * 1024 * 1024:])):
            up = c.call(f"alice UploadPart {n}", alice.upload_part, Bucket=PRIV, Key="mp.bin",
                        UploadId=mpu["UploadId"], PartNumber=n, Body=chunk)
            if up:
                parts.append({"PartNumber": n, "ETag": up["ETag"]})
        denied("bob UploadPart 3 into alice's upload", bob.upload_part, Bucket=PRIV, Key="mp.bin",
               UploadId=mpu["UploadId"], PartNumber=3, Body=b"x")
        c.call("alice CompleteMultipartUpload mp.bin", alice.complete_multipart_upload, Bucket=PRIV, Key="mp.bin",
               UploadId=mpu["UploadId"], MultipartUpload={"Parts": parts})
    url_gives("anonymous, a multipart object created with ACL=public-read", PRIV, "mp.bin", 200, data=mp_data)
    acl = c.call("alice GetObjectAcl mp.bin", alice.get_object_acl, Bucket=PRIV, Key="mp.bin")
    acl_is("GetObjectAcl mp.bin", acl, ALICE, "alice", public_read)
    for who, s3, status in (("alice", alice, 200), ("bob", bob, 403)):
        url = s3.generate_presigned_url("get_object", Params={"Bucket": PRIV, "Key": "copy-private.bin"},
                                        ExpiresIn=300)
        try:
            with _OPENER.open(url, timeout=30) as r:
                got, body = r.status, r.read()
        except urllib.error.HTTPError as e:
            got, body = e.code, e.read()
        c.check(got == status and (status != 200 or body == pub_data),
                f"{who}'s presigned GET of alice's private copy-private.bin: HTTP {status}",
                f"actual HTTP {got}, body {body[:200]!r}")

    # ------------------------------------------------------------------ versions
    c.step(f"{VERS} (versioning Enabled): each version has its own ACL")
    c.call(f"alice CreateBucket {VERS}", alice.create_bucket, Bucket=VERS)
    c.call("alice PutBucketVersioning Enabled", alice.put_bucket_versioning, Bucket=VERS,
           VersioningConfiguration={"Status": "Enabled"})
    v1_data, v2_data = os.urandom(1000), os.urandom(2000)
    v1 = (c.call("alice PutObject doc.bin version 1 ACL='public-read'", alice.put_object, Bucket=VERS,
                 Key="doc.bin", Body=v1_data, ACL="public-read") or {}).get("VersionId", "missing-v1")
    v2 = (c.call("alice PutObject doc.bin version 2 (private)", alice.put_object, Bucket=VERS, Key="doc.bin",
                 Body=v2_data) or {}).get("VersionId", "missing-v2")
    c.check(v1 != v2 and "null" not in (v1, v2), "two distinct real VersionIds", f"{v1!r} {v2!r}")
    reads("anonymous, VersionId=<version 1> (public-read)", anon, VERS, "doc.bin", v1_data, VersionId=v1)
    denied("anonymous GetObject doc.bin (the latest, version 2, is private)", anon.get_object, Bucket=VERS,
           Key="doc.bin")
    acl = c.call("alice GetObjectAcl doc.bin VersionId=<version 1>", alice.get_object_acl, Bucket=VERS,
                 Key="doc.bin", VersionId=v1)
    acl_is("GetObjectAcl VersionId=<version 1>", acl, ALICE, "alice", public_read)
    acl = c.call("alice GetObjectAcl doc.bin (latest)", alice.get_object_acl, Bucket=VERS, Key="doc.bin")
    acl_is("GetObjectAcl latest", acl, ALICE, "alice", private)
    out = c.call("alice PutObjectAcl doc.bin VersionId=<version 2> ACL='public-read'", alice.put_object_acl,
                 Bucket=VERS, Key="doc.bin", VersionId=v2, ACL="public-read")
    if out:
        c.eq("PutObjectAcl VersionId=<version 2>: HTTP 200", status_of(out), 200)
    reads("anonymous, latest after PutObjectAcl on version 2", anon, VERS, "doc.bin", v2_data)
    c.call("alice PutObjectAcl doc.bin VersionId=<version 1> ACL='private'", alice.put_object_acl, Bucket=VERS,
           Key="doc.bin", VersionId=v1, ACL="private")
    denied("anonymous GetObject VersionId=<version 1> (private now)", anon.get_object, Bucket=VERS, Key="doc.bin",
           VersionId=v1)
    reads("anonymous, latest still public-read", anon, VERS, "doc.bin", v2_data)

    # ------------------------------------------------------------------ public-read-write
    c.step(f"{OPEN} (public-read-write): an anonymous PutObject; the anonymous writer owns the object")
    c.call(f"alice CreateBucket {OPEN} ACL='public-read-write'", alice.create_bucket, Bucket=OPEN,
           ACL="public-read-write")
    anon_data = os.urandom(4000)
    c.call(f"anonymous PutObject {OPEN}/anon.bin ACL='bucket-owner-full-control' (unsigned body)",
           anon.put_object, Bucket=OPEN, Key="anon.bin", Body=anon_data, ACL="bucket-owner-full-control")
    reads("alice (bucket-owner-full-control from the anonymous writer)", alice, OPEN, "anon.bin", anon_data)
    c.call(f"anonymous PutObject {OPEN}/anon-private.bin (no ACL)", anon.put_object, Bucket=OPEN,
           Key="anon-private.bin", Body=b"anonymous")
    denied("alice GetObject anon-private.bin (the anonymous writer owns it)", alice.get_object, Bucket=OPEN,
           Key="anon-private.bin")
    denied("anonymous GetObject anon-private.bin (the anonymous owner is nobody: no implicit access)",
           anon.get_object, Bucket=OPEN, Key="anon-private.bin")
    out = c.call(f"anonymous DeleteObject {OPEN}/anon-private.bin (WRITE on the bucket)", anon.delete_object,
                 Bucket=OPEN, Key="anon-private.bin")
    if out:
        c.eq("anonymous DeleteObject: HTTP 204", status_of(out), 204)
    denied(f"anonymous PutBucketAcl {OPEN}", anon.put_bucket_acl, Bucket=OPEN, ACL="private")
    mpu = c.call(f"anonymous CreateMultipartUpload {OPEN}/anon-mp.bin", anon.create_multipart_upload,
                 Bucket=OPEN, Key="anon-mp.bin", ACL="public-read")
    if mpu:
        up = c.call("anonymous UploadPart 1", anon.upload_part, Bucket=OPEN, Key="anon-mp.bin",
                    UploadId=mpu["UploadId"], PartNumber=1, Body=b"anonymous multipart")
        denied("bob UploadPart 2 into the anonymous upload", bob.upload_part, Bucket=OPEN, Key="anon-mp.bin",
               UploadId=mpu["UploadId"], PartNumber=2, Body=b"x")
        if up:
            c.call("anonymous CompleteMultipartUpload", anon.complete_multipart_upload, Bucket=OPEN,
                   Key="anon-mp.bin", UploadId=mpu["UploadId"],
                   MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": up["ETag"]}]})
    reads("bob (the anonymous multipart object is public-read)", bob, OPEN, "anon-mp.bin", b"anonymous multipart")

    # ------------------------------------------------------------------ bucket policy
    c.step(f"{POL}: a bucket policy (Principal '*', s3:GetObject on {POL}/public/*)")
    c.call(f"alice CreateBucket {POL}", alice.create_bucket, Bucket=POL)
    pol_pub, pol_priv, pol_denied = os.urandom(9000), os.urandom(900), os.urandom(90)
    c.call("alice PutObject public/x", alice.put_object, Bucket=POL, Key="public/x", Body=pol_pub)
    c.call("alice PutObject private/x", alice.put_object, Bucket=POL, Key="private/x", Body=pol_priv)
    c.call("alice PutObject public/denied-to-bob", alice.put_object, Bucket=POL, Key="public/denied-to-bob",
           Body=pol_denied)
    fails(f"GetBucketPolicy {POL} before any: 404 NoSuchBucketPolicy", "NoSuchBucketPolicy", 404,
          alice.get_bucket_policy, Bucket=POL)
    url_gives("before the policy", POL, "public/x", 403, code="AccessDenied")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
             "Resource": f"arn:aws:s3:::{POL}/public/*"},
        ],
    }
    out = c.call(f"alice PutBucketPolicy {POL} (Policy=json.dumps)", alice.put_bucket_policy, Bucket=POL,
                 Policy=json.dumps(policy))
    if out:
        c.eq("PutBucketPolicy: HTTP 204", status_of(out), 204)
    url_gives("with the policy", POL, "public/x", 200, data=pol_pub)
    url_gives("with the policy", POL, "private/x", 403, code="AccessDenied")
    reads("anonymous boto3 (policy)", anon, POL, "public/x", pol_pub)
    odd = "public/sp ace+é&?.bin"
    c.call(f"alice PutObject {odd!r}", alice.put_object, Bucket=POL, Key=odd, Body=b"odd key")
    url_gives("with the policy, a key with space, '+', 'é', '&', '?'", POL, odd, 200, data=b"odd key")
    status, body, code = http_get(POL, "public/../private/x")
    c.check(status in (403, 404) and body != pol_priv,
            "urllib GET /acl-policy/public/../private/x: no dot-segment escape from public/ (403 or 404)",
            f"HTTP {status} {code} body {body[:200]!r}")
    denied(f"anonymous ListObjectsV2 {POL} (the policy allows GetObject only)", anon.list_objects_v2, Bucket=POL)
    denied(f"anonymous PutObject {POL}/public/new (GetObject only)", anon.put_object, Bucket=POL,
           Key="public/new", Body=b"x")
    fails(f"anonymous GetObject {POL}/public/missing (may not list): 403 AccessDenied, not NoSuchKey",
          "AccessDenied", 403, anon.get_object, Bucket=POL, Key="public/missing")
    out = c.call(f"alice GetBucketPolicy {POL}", alice.get_bucket_policy, Bucket=POL)
    if out:
        try:
            got = json.loads(out.get("Policy", ""))
        except ValueError as e:
            got = f"not JSON: {e}: {out.get('Policy')!r}"
        c.eq("GetBucketPolicy: the same document (json equal)", got, policy)
    denied(f"bob GetBucketPolicy {POL}", bob.get_bucket_policy, Bucket=POL)
    denied(f"bob PutBucketPolicy {POL}", bob.put_bucket_policy, Bucket=POL, Policy=json.dumps(policy))
    denied(f"anonymous GetBucketPolicy {POL}", anon.get_bucket_policy, Bucket=POL)

    with_condition = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": f"arn:aws:s3:::{POL}/*",
                       "Condition": {"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}}],
    }
    fails("PutBucketPolicy with a Condition: 400 MalformedPolicy", "MalformedPolicy", 400,
          alice.put_bucket_policy, Bucket=POL, Policy=json.dumps(with_condition))
    other_bucket = dict(policy, Statement=[dict(policy["Statement"][0], Resource="arn:aws:s3:::other-bucket/*")])
    fails("PutBucketPolicy on another bucket's ARN: 400 MalformedPolicy", "MalformedPolicy", 400,
          alice.put_bucket_policy, Bucket=POL, Policy=json.dumps(other_bucket))
    fails("PutBucketPolicy that is not JSON: 400 MalformedPolicy", "MalformedPolicy", 400,
          alice.put_bucket_policy, Bucket=POL, Policy="{not json")
    out = c.call(f"alice GetBucketPolicy {POL} after the refused puts", alice.get_bucket_policy, Bucket=POL)
    if out:
        c.eq("GetBucketPolicy: still the first document", json.loads(out.get("Policy", "null")), policy)
    url_gives("after the refused puts (the first policy applies)", POL, "private/x", 403, code="AccessDenied")

    c.step("a second policy: Deny beats Allow; a principal by IAM ARN; s3:ListBucket on the bucket")
    policy2 = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "PublicRead", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["s3:GetObject"],
             "Resource": [f"arn:aws:s3:::{POL}/public/*"]},
            {"Sid": "NotBob", "Effect": "Deny", "Principal": {"AWS": [BOB]}, "Action": "s3:Get*",
             "Resource": f"arn:aws:s3:::{POL}/public/denied-*"},
            {"Sid": "BobLists", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:user/bob"},
             "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{POL}"},
        ],
    }
    c.call(f"alice PutBucketPolicy {POL} (Allow *, Deny bob, Allow bob ListBucket)", alice.put_bucket_policy,
           Bucket=POL, Policy=json.dumps(policy2))
    out = c.call(f"alice GetBucketPolicy {POL}", alice.get_bucket_policy, Bucket=POL)
    if out:
        c.eq("GetBucketPolicy: the second document", json.loads(out.get("Policy", "null")), policy2)
    reads("anonymous (Allow *)", anon, POL, "public/denied-to-bob", pol_denied)
    denied("bob GetObject public/denied-to-bob (his Deny beats the Allow for *)", bob.get_object, Bucket=POL,
           Key="public/denied-to-bob")
    reads("bob (Allow * elsewhere under public/)", bob, POL, "public/x", pol_pub)
    reads("alice, the owner (no Deny for her)", alice, POL, "public/denied-to-bob", pol_denied)
    out = c.call(f"bob ListObjectsV2 {POL} (Allow by ARN arn:aws:iam::…:user/bob)", bob.list_objects_v2,
                 Bucket=POL)
    if out:
        c.eq(f"bob ListObjectsV2 {POL}: the keys", keys_of(out), ["private/x", "public/denied-to-bob", odd, "public/x"])
    denied(f"anonymous ListObjectsV2 {POL} (bob's Allow only)", anon.list_objects_v2, Bucket=POL)
    denied(f"bob GetObject {POL}/private/x (listing is not reading)", bob.get_object, Bucket=POL, Key="private/x")

    out = c.call(f"alice DeleteBucketPolicy {POL}", alice.delete_bucket_policy, Bucket=POL)
    if out:
        c.eq("DeleteBucketPolicy: HTTP 204", status_of(out), 204)
    fails(f"GetBucketPolicy {POL} after DeleteBucketPolicy: 404 NoSuchBucketPolicy", "NoSuchBucketPolicy", 404,
          alice.get_bucket_policy, Bucket=POL)
    url_gives("after DeleteBucketPolicy", POL, "public/x", 403, code="AccessDenied")
    denied(f"bob ListObjectsV2 {POL} after DeleteBucketPolicy", bob.list_objects_v2, Bucket=POL)
    denied(f"bob GetObject {POL}/public/x after DeleteBucketPolicy (the Allow for * is gone)", bob.get_object,
           Bucket=POL, Key="public/x")
    fails("GetBucketPolicy of a missing bucket: 404 NoSuchBucket", "NoSuchBucket", 404,
          alice.get_bucket_policy, Bucket="acl-no-such-bucket")

    # ------------------------------------------------------------------ bob against alice's private data
    c.step("bob against alice's private data: no reads, listings, copies, ACL or bucket changes")
    c.call(f"bob CreateBucket {BOBS}", bob.create_bucket, Bucket=BOBS)
    c.call(f"alice PutBucketAcl {PRIV} ACL='private' (bob's WRITE gone)", alice.put_bucket_acl, Bucket=PRIV,
           ACL="private")
    denied(f"bob GetObject {POL}/private/x", bob.get_object, Bucket=POL, Key="private/x")
    fails(f"bob HeadObject {PRIV}/secret.bin: 403", "403", 403, bob.head_object, Bucket=PRIV, Key="secret.bin")
    denied(f"bob ListObjectsV2 {PRIV}", bob.list_objects_v2, Bucket=PRIV)
    denied(f"bob ListObjectVersions {VERS}", bob.list_object_versions, Bucket=VERS)
    denied(f"bob CopyObject {PRIV}/secret.bin -> {BOBS}/stolen.bin", bob.copy_object, Bucket=BOBS,
           Key="stolen.bin", CopySource={"Bucket": PRIV, "Key": "secret.bin"})
    denied(f"bob CopyObject {VERS}/doc.bin@<version 1> (private) -> {BOBS}/stolen-v1.bin", bob.copy_object,
           Bucket=BOBS, Key="stolen-v1.bin", CopySource={"Bucket": VERS, "Key": "doc.bin", "VersionId": v1})
    fails(f"bob HeadObject {BOBS}/stolen.bin: the refused copies stored nothing (404)", "404", 404,
          bob.head_object, Bucket=BOBS, Key="stolen.bin")
    out = c.call(f"bob ListObjectsV2 {BOBS}: empty", bob.list_objects_v2, Bucket=BOBS)
    if out is not None:
        c.eq(f"bob ListObjectsV2 {BOBS}: no keys", keys_of(out), [])
    out = c.call(f"bob CopyObject {VERS}/doc.bin (latest: public-read) -> {BOBS}/copied.bin", bob.copy_object,
                 Bucket=BOBS, Key="copied.bin", CopySource={"Bucket": VERS, "Key": "doc.bin"})
    reads("bob, the copy of a public-read object", bob, BOBS, "copied.bin", v2_data)
    denied(f"alice GetObject {BOBS}/copied.bin (bob's bucket, private)", alice.get_object, Bucket=BOBS,
           Key="copied.bin")
    denied(f"bob CopyObject {BOBS}/copied.bin -> {PRIV}/pushed.bin (no WRITE on alice's bucket)", bob.copy_object,
           Bucket=PRIV, Key="pushed.bin", CopySource={"Bucket": BOBS, "Key": "copied.bin"})
    denied(f"bob DeleteObject {PRIV}/secret.bin", bob.delete_object, Bucket=PRIV, Key="secret.bin")
    # S3 may refuse the whole request (403) or answer 200 with a per-key AccessDenied: either way nothing goes.
    try:
        out = bob.delete_objects(Bucket=PRIV, Delete={"Objects": [{"Key": "secret.bin"}]})
        got = ("200", [(e.get("Key"), e.get("Code")) for e in out.get("Errors", [])],
               [d.get("Key") for d in out.get("Deleted", [])])
        c.eq(f"bob DeleteObjects [{PRIV}/secret.bin]: a per-key AccessDenied, nothing deleted", got,
             ("200", [("secret.bin", "AccessDenied")], []))
    except ClientError as e:
        got = (e.response.get("ResponseMetadata", {}).get("HTTPStatusCode"), error_code(e))
        c.eq(f"bob DeleteObjects [{PRIV}/secret.bin]: 403 AccessDenied", got, (403, "AccessDenied"))
    denied(f"bob PutObjectAcl {PRIV}/secret.bin", bob.put_object_acl, Bucket=PRIV, Key="secret.bin",
           ACL="public-read")
    denied(f"bob PutBucketAcl {PRIV}", bob.put_bucket_acl, Bucket=PRIV, GrantFullControl=f"id={BOB}")
    denied(f"bob DeleteBucket {PRIV}", bob.delete_bucket, Bucket=PRIV)
    denied(f"bob PutBucketVersioning {PRIV}", bob.put_bucket_versioning, Bucket=PRIV,
           VersioningConfiguration={"Status": "Enabled"})
    denied(f"bob GetObjectTagging {PRIV}/secret.bin", bob.get_object_tagging, Bucket=PRIV, Key="secret.bin")
    reads("alice after bob's refused requests", alice, PRIV, "secret.bin", secret)
    out = c.call("bob ListBuckets", bob.list_buckets)
    if out:
        c.eq("bob ListBuckets: only his own bucket", [b["Name"] for b in out.get("Buckets", [])], [BOBS])
    out = c.call("alice ListBuckets", alice.list_buckets)
    if out:
        c.eq("alice ListBuckets: only hers", [b["Name"] for b in out.get("Buckets", [])],
             sorted([PUB, PRIV, POL, VERS, OPEN]))
    out = c.call("root ListBuckets (every bucket)", root.list_buckets)
    if out:
        c.eq("root ListBuckets: all six", [b["Name"] for b in out.get("Buckets", [])],
             sorted([PUB, PRIV, POL, VERS, OPEN, BOBS]))
    reads("root (may read anything)", root, PRIV, "bob-private.bin", bob_only)
    reads("root", root, PRIV, "secret.bin", secret)
    c.call("root PutObjectAcl secret.bin ACL='public-read' (root may change any ACL)", root.put_object_acl,
           Bucket=PRIV, Key="secret.bin", ACL="public-read")
    acl = c.call("alice GetObjectAcl secret.bin", alice.get_object_acl, Bucket=PRIV, Key="secret.bin")
    acl_is("GetObjectAcl secret.bin after root's public-read (the canned ACL is alice's, the owner's)", acl,
           ALICE, "alice", public_read)
    url_gives("anonymous, after root's PutObjectAcl public-read", PRIV, "secret.bin", 200, data=secret)

    # ------------------------------------------------------------------ cleanup
    c.step("cleanup: every object and version, by the buckets' owners, then the buckets")
    for s3, who, bucket in ((alice, "alice", PUB), (alice, "alice", PRIV), (alice, "alice", POL),
                            (alice, "alice", VERS), (alice, "alice", OPEN), (bob, "bob", BOBS)):
        out = c.call(f"{who} ListObjectVersions {bucket}", s3.list_object_versions, Bucket=bucket) or {}
        objects = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                   for v in out.get("Versions", []) + out.get("DeleteMarkers", [])]
        if objects:
            out = c.call(f"{who} DeleteObjects of the {len(objects)} versions in {bucket}", s3.delete_objects,
                         Bucket=bucket, Delete={"Objects": objects})
            if out:
                c.eq(f"DeleteObjects {bucket}: no Errors", out.get("Errors", []), [])
        c.call(f"{who} DeleteBucket {bucket}", s3.delete_bucket, Bucket=bucket)
    c.finish()


if __name__ == "__main__":
    main()
