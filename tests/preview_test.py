#!/usr/bin/env python3
"""PDF preview (GET /jmap/preview/{accountId}/{blobId}/{name}, in
src/daemon/daemon-blob.c): a blob whose bytes start with %PDF- is served
inline with exactly the headers the route promises (the tightest under which
Chromium's viewer still renders it; tests/web/preview.test.mjs checks that
in the browser); anything else is 415 whatever its declared type or ?type=
says; the route needs the same sign-in as a download (cookie or Basic), shows
no other user's blob, and malformed or traversing paths are 404. Real serve,
real HTTP on loopback; no Dovecot (the account is added offline and the PDF
is an upload, which is a blob of the user like a mail's part).

usage: preview_test.py [SCENARIO...]   (env MK_BIN: the mailkeep binary)
"""
import base64, json, os, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sync_test import check, run, run_scenarios  # noqa: E402
from websession_test import ALICE_PW, BIN, Serve, cookie_of, setup  # noqa: E402

BOB_PW = "bob's preview password 77"
PDF = (b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
       b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
       b"trailer\n<< /Root 1 0 R >>\n%%EOF\n")
HTML = b"<!doctype html><script>alert(document.cookie)</script>%PDF-1.4\n"

# What every preview answer carries, exactly.
HEADERS = {
    "content-type": "application/pdf",
    "content-disposition": "inline",
    "content-security-policy": "sandbox; default-src 'none'; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'self'",
    "x-frame-options": "SAMEORIGIN",
    "x-content-type-options": "nosniff",
    "cache-control": "private, no-store",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), usb=(), payment=(), "
                          "clipboard-read=()",
}


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode((user + ":" + pw).encode()).decode()}


def world(tmp, name):
    """A hub with alice (one account, added offline: serve's syncs of it
    fail, which does not matter here) and bob (none), and serve running."""
    data, web = setup(tmp, name)
    f = os.path.join(tmp, name + "-bob.pass")
    open(f, "w").write(BOB_PW)
    run([BIN, "--data", data, "user", "add", "bob", "--password-file", f])
    f = os.path.join(tmp, name + "-imap.pass")
    open(f, "w").write("not used")
    run([BIN, "--data", data, "account", "add", "--user", "alice", "--imap",
         "imaps://127.0.0.1:9", "--login", "alice", "--password-file", f, "--consent",
         "--no-check"])
    s = Serve(data, tmp, name, "--web-root", web)
    st, hd, body = s.req("GET", "/.well-known/jmap", headers=basic("alice", ALICE_PW))
    check(st == 200, "session: %d %s" % (st, body))
    acct = json.loads(body)["primaryAccounts"]["urn:ietf:params:jmap:mail"]
    return s, acct


def upload(s, acct, data, ctype):
    st, hd, body = s.req("POST", "/jmap/upload/%s/" % acct, data,
                         headers=dict(basic("alice", ALICE_PW), **{"Content-Type": ctype}))
    check(st == 201, "upload: %d %s" % (st, body))
    return json.loads(body)["blobId"]


def problem(st, hd, body, status, what):
    check(st == status, "%s: status %d, wanted %d (%s)" % (what, st, status, body))
    check(hd.get("content-type") == "application/problem+json", what + ": problem json")
    check(b"%PDF" not in body.replace(b"%PDF-)", b""), what + ": no file bytes in the answer")
    return json.loads(body)


def t_serves_pdf(tmp):
    s, acct = world(tmp, "pdf")
    try:
        # Declared as HTML: the bytes decide, not the declared type.
        for ctype in ("application/pdf", "text/html", "application/octet-stream"):
            blob = upload(s, acct, PDF, ctype)
            for auth in ("basic", "cookie"):
                if auth == "basic":
                    h = basic("alice", ALICE_PW)
                else:
                    st, hd, body = s.signin("alice", ALICE_PW)
                    h = {"Cookie": cookie_of(hd).split(";")[0]}
                for q in ("", "?type=text/html", "?accept=image/svg%2Bxml"):
                    path = "/jmap/preview/%s/%s/report.pdf%s" % (acct, blob, q)
                    st, hd, body = s.req("GET", path, headers=h)
                    check(st == 200 and body == PDF, "%s %s %s: %d" % (ctype, auth, q, st))
                    for k, v in HEADERS.items():
                        check(hd.get(k) == v, "%s %s: %s is %r, wanted %r" % (
                            ctype, auth, k, hd.get(k), v))
                    check("set-cookie" not in hd and "access-control-allow-origin" not in hd,
                          "no cookie, no CORS")
        # HEAD answers the same headers.
        st, hd, body = s.req("HEAD", "/jmap/preview/%s/%s/x.pdf" % (acct, blob),
                             headers=basic("alice", ALICE_PW))
        check(st == 200 and hd.get("content-security-policy") ==
              HEADERS["content-security-policy"] and body == b"", "HEAD: %d" % st)
        # The download route is unchanged: a PDF is still an attachment there.
        st, hd, body = s.req("GET", "/jmap/download/%s/%s/x.pdf" % (acct, blob),
                             headers=basic("alice", ALICE_PW))
        check(st == 200 and hd.get("content-disposition") == "attachment" and
              hd.get("content-security-policy") == "sandbox; default-src 'none'",
              "download unchanged: %r" % hd)
    finally:
        s.stop()


def t_refuses_others(tmp):
    s, acct = world(tmp, "refuse")
    try:
        h = basic("alice", ALICE_PW)
        for data, ctype, what in ((HTML, "application/pdf", "HTML declared as PDF"),
                                  (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml",
                                   "SVG"),
                                  (b" %PDF-1.4\n", "application/pdf", "leading space"),
                                  (b"%PDF", "application/pdf", "too short"),
                                  (b"%pdf-1.4\n", "application/pdf", "lower case"),
                                  (b"", "application/pdf", "empty")):
            blob = upload(s, acct, data, ctype)
            st, hd, body = s.req("GET", "/jmap/preview/%s/%s/x.pdf?type=application/pdf" % (
                acct, blob), headers=h)
            j = problem(st, hd, body, 415, what)
            check("only PDF files can be previewed" in j["detail"], what + ": " + j["detail"])
            check(hd.get("content-disposition") is None, what + ": no disposition")
    finally:
        s.stop()


def t_auth(tmp):
    s, acct = world(tmp, "auth")
    try:
        blob = upload(s, acct, PDF, "application/pdf")
        path = "/jmap/preview/%s/%s/x.pdf" % (acct, blob)
        st, hd, body = s.req("GET", path)
        check(st == 401 and body != PDF, "no sign-in: %d" % st)
        st, hd, body = s.req("GET", path, headers=basic("alice", "wrong password"))
        check(st == 401 and body != PDF, "wrong password: %d" % st)
        st, hd, body = s.req("GET", path, headers={"Cookie": "mk_session=" + "A" * 43})
        check(st == 401 and body != PDF, "made-up cookie: %d" % st)
        # Another user: neither alice's account nor her blob.
        st, hd, body = s.req("GET", path, headers=basic("bob", BOB_PW))
        problem(st, hd, body, 404, "bob reads alice's blob")
        # POST is not a preview (with the cookie it needs CSRF first).
        st, hd, body = s.req("POST", path, b"", headers=basic("alice", ALICE_PW))
        problem(st, hd, body, 405, "POST")
    finally:
        s.stop()


def t_paths(tmp):
    s, acct = world(tmp, "paths")
    try:
        h = basic("alice", ALICE_PW)
        blob = upload(s, acct, PDF, "application/pdf")
        for path in ("/jmap/preview/", "/jmap/preview/%s" % acct, "/jmap/preview/%s/%s" % (
                acct, blob), "/jmap/preview/%s//x.pdf" % acct, "/jmap/preview//%s/x.pdf" % blob,
                     "/jmap/preview/%s/../%s/x.pdf" % (acct, blob),
                     "/jmap/preview/../download/%s/%s/x.pdf" % (acct, blob),
                     "/jmap/preview/%s/..%%2F%s/x.pdf" % (acct, blob),
                     "/jmap/preview/%s/%s%%00/x.pdf" % (acct, blob),
                     "/jmap/preview/%s/B999999/x.pdf" % acct,
                     "/jmap/preview/A999/%s/x.pdf" % blob,
                     "/jmap/preview/%s/%s/x.pdf" % ("A" * 200, blob),
                     "/jmap/preview/%s/%s/x.pdf" % (acct, "B" + "1" * 300)):
            st, hd, body = s.req("GET", path, headers=h)
            check(st in (400, 404) and body != PDF, "%s: %d" % (path, st))
        # The name segment is only a name: any name (even with dots or
        # slashes after it) serves the same blob.
        for name in ("x.pdf", "..", "a/b/c.pdf", "r%C3%A9sum%C3%A9.pdf"):
            st, hd, body = s.req("GET", "/jmap/preview/%s/%s/%s" % (acct, blob, name),
                                 headers=h)
            check(st == 200 and body == PDF, "name %r: %d" % (name, st))
    finally:
        s.stop()


SCENARIOS = {
    "serves_pdf": t_serves_pdf,
    "refuses_others": t_refuses_others,
    "auth": t_auth,
    "paths": t_paths,
}

if __name__ == "__main__":
    run_scenarios(SCENARIOS, "mk-preview-test-", sys.argv[1:])
