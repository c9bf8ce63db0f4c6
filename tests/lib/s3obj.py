#!/usr/bin/env python3
"""s3obj.py - a small S3 client for tests, independent of tessera's own code.

    s3obj.py mb   http://HOST:PORT/BUCKET           create the bucket
    s3obj.py rb   http://HOST:PORT/BUCKET           delete every key, then it
    s3obj.py ls   http://HOST:PORT/BUCKET [PREFIX]  print "SIZE KEY" lines
    s3obj.py get  http://HOST:PORT/BUCKET KEY       body to stdout
    s3obj.py put  http://HOST:PORT/BUCKET KEY       body from stdin
    s3obj.py rm   http://HOST:PORT/BUCKET KEY
    s3obj.py flip http://HOST:PORT/BUCKET KEY OFF   xor byte OFF with 0xff

Requests are signed with SigV4 (path-style, region us-east-1) using
TESSERA_ACCESS_KEY / TESSERA_SECRET_KEY (default S3RVER/S3RVER).  Exit 0
on success, 1 with one line on stderr otherwise (404 on get/rm: exit 3).
"""
import datetime
import hashlib
import hmac
import http.client
import os
import sys
import urllib.parse
import xml.etree.ElementTree as ET

REGION = "us-east-1"


def _sign(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def request(url, method, key="", query=None, body=b""):
    u = urllib.parse.urlsplit(url)
    bucket = u.path.strip("/")
    path = "/" + bucket + ("/" + urllib.parse.quote(key, safe="/~") if key else "")
    q = sorted((query or {}).items())
    cq = "&".join("%s=%s" % (urllib.parse.quote(k, safe="-_.~"),
                             urllib.parse.quote(v, safe="-_.~")) for k, v in q)
    now = datetime.datetime.now(datetime.timezone.utc)
    amz = now.strftime("%Y%m%dT%H%M%SZ")
    day = now.strftime("%Y%m%d")
    sha = hashlib.sha256(body).hexdigest()
    hdrs = {"host": u.netloc, "x-amz-content-sha256": sha, "x-amz-date": amz}
    names = ";".join(sorted(hdrs))
    canon = "\n".join([method, path, cq]
                      + ["%s:%s" % (k, hdrs[k]) for k in sorted(hdrs)]
                      + ["", names, sha])
    scope = "%s/%s/s3/aws4_request" % (day, REGION)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope,
                     hashlib.sha256(canon.encode()).hexdigest()])
    ak = os.environ.get("TESSERA_ACCESS_KEY", "S3RVER")
    sk = os.environ.get("TESSERA_SECRET_KEY", "S3RVER")
    k = _sign(("AWS4" + sk).encode(), day)
    for part in (REGION, "s3", "aws4_request"):
        k = _sign(k, part)
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    hdrs["authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, "
                             "SignedHeaders=%s, Signature=%s" % (ak, scope, names, sig))
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)
    c.request(method, path + ("?" + cq if cq else ""), body=body, headers=hdrs)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def die(msg, code=1):
    sys.stderr.write("s3obj: %s\n" % msg)
    sys.exit(code)


def check(st, data, what, ok=(200, 204)):
    if st not in ok:
        die("%s: HTTP %d %s" % (what, st, data[:200].decode(errors="replace")),
            3 if st == 404 else 1)


def _local(tree):
    """Drop XML namespaces: servers differ in the one they use."""
    for el in tree.iter():
        el.tag = el.tag.rsplit("}", 1)[-1]
    return tree


def list_keys(url, prefix=""):
    token = None
    while True:
        q = {"list-type": "2", "prefix": prefix, "max-keys": "1000"}
        if token:
            q["continuation-token"] = token
        st, data = request(url, "GET", query=q)
        check(st, data, "list '%s'" % prefix)
        root = _local(ET.fromstring(data))
        for c in root.iter("Contents"):
            yield int(c.find("Size").text), c.find("Key").text
        t = root.find("NextContinuationToken")
        if root.findtext("IsTruncated") != "true" or t is None:
            return
        token = t.text


def main(argv):
    if len(argv) < 3:
        die("usage: s3obj.py mb|rb|ls|get|put|rm|flip URL [KEY [OFF]]", 2)
    op, url, args = argv[1], argv[2], argv[3:]
    if op == "mb":
        st, data = request(url, "PUT")
        check(st, data, "create bucket")
    elif op == "rb":
        st, data = request(url, "HEAD")
        if st == 404:
            return
        for _, key in list(list_keys(url)):
            st, data = request(url, "DELETE", key)
            check(st, data, "delete '%s'" % key)
        st, data = request(url, "DELETE")
        check(st, data, "delete bucket")
    elif op == "ls":
        for size, key in list_keys(url, args[0] if args else ""):
            print(size, key)
    elif op == "get":
        st, data = request(url, "GET", args[0])
        check(st, data, "get '%s'" % args[0], (200,))
        sys.stdout.buffer.write(data)
    elif op == "put":
        st, data = request(url, "PUT", args[0], body=sys.stdin.buffer.read())
        check(st, data, "put '%s'" % args[0])
    elif op == "rm":
        st, data = request(url, "DELETE", args[0])
        check(st, data, "delete '%s'" % args[0])
    elif op == "flip":
        st, data = request(url, "GET", args[0])
        check(st, data, "get '%s'" % args[0], (200,))
        b = bytearray(data)
        off = int(args[1])
        if off >= len(b):
            die("offset %d past the end of '%s' (%d bytes)" % (off, args[0], len(b)))
        b[off] ^= 0xFF
        st, data = request(url, "PUT", args[0], body=bytes(b))
        check(st, data, "put '%s'" % args[0])
    else:
        die("unknown operation '%s'" % op, 2)


if __name__ == "__main__":
    main(sys.argv)
