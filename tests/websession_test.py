#!/usr/bin/env python3
"""The web app's side of `mailkeep serve` (src/daemon/daemon-static.c,
daemon-websession.c): the static files of a small hand-made web root
(caching headers, ETag and 304, gzip, the CSP and the other headers, exact
names only: traversal attempts get 404), and the cookie sessions (POST/GET
/mailkeep/session, sign-out, the cookie's flags, CSRF on every other method,
wrong password, the sign-in limits, expiry, revocation closing an event
source, a zero-access user's lease opened by the sign-in and wiped by the
sign-out). Real serve, real HTTP on loopback; no npm, no Dovecot.

usage: websession_test.py [SCENARIO...]   (env MK_BIN: the mailkeep binary)
"""
import base64, gzip, http.client, json, os, re, signal, socket, sqlite3, subprocess, sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sync_test import BIN, check, run, run_scenarios  # noqa: E402

BIN = os.path.abspath(BIN)
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: "
       "https: http:; frame-src 'self' blob: about:; connect-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
ALICE_PW = "alice's web password 42"
ZED_PW = "zed's zero-access passphrase 9c1"
JS = ("/* app */\n" + "function f(n){return n*2}\n" * 400).encode()
CSS = ("body{color:#222}\n" * 200).encode()
PNG = bytes(range(256)) * 8
INDEX = (b'<!doctype html><html><head><link rel="stylesheet" href="assets/app-7QX2K4LM.css">'
         b'<script defer src="assets/app-Z3K9Q2WD.js"></script></head><body>'
         + b"<div id=app></div>" * 40 + b"</body></html>\n")
SECRET = b"this file is outside the web root 5e0c"


class Serve:
    def __init__(self, data, tmp, name, *extra):
        self.log = os.path.join(tmp, name + "-access.log")
        # A free port chosen here: with --public-url the log line names that.
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.p = subprocess.Popen([BIN, "--data", data, "serve", "--listen",
                                   "127.0.0.1:%d" % self.port,
                                   "--access-log", self.log, *extra],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  stdin=subprocess.DEVNULL,
                                  env=dict(os.environ, MK_NO_PROVIDER_PUSH="1"))
        self.lines = []
        while True:
            line = self.p.stdout.readline()
            if line == "":
                raise AssertionError("serve did not start: %s" % self.p.stderr.read())
            self.lines.append(line)
            if " serving " in line:
                break
        self.lines.append(self.p.stdout.readline())  # "web app: ...", next

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        rc = self.p.wait(timeout=60)
        err = self.p.stderr.read()
        check(rc == 0, "serve exited %d: %s" % (rc, err))

    def req(self, method, path, body=None, headers=None, raw_path=False):
        """One request on a fresh connection: (status, headers dict with
        lower-case names (Set-Cookie kept as a list), body bytes)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        h = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        c.putrequest(method, path, skip_accept_encoding=True)
        for k, v in h.items():
            c.putheader(k, v)
        if body is not None:
            c.putheader("Content-Length", str(len(body)))
        c.endheaders(body)
        r = c.getresponse()
        data = r.read()
        hd = {}
        for k, v in r.getheaders():
            k = k.lower()
            if k == "set-cookie":
                hd.setdefault(k, []).append(v)
            else:
                hd[k] = v
        c.close()
        return r.status, hd, data

    def signin(self, user, password, **kw):
        return self.req("POST", "/mailkeep/session", {"username": user, "password": password},
                        **kw)


def setup(tmp, name):
    data = os.path.join(tmp, name + "-data")
    run([BIN, "--data", data, "init"])
    for user, pw, za in (("alice", ALICE_PW, False), ("zed", ZED_PW, True)):
        f = os.path.join(tmp, name + "-" + user + ".pass")
        open(f, "w").write(pw)
        run([BIN, "--data", data, "user", "add", user, "--password-file", f]
            + (["--zero-access"] if za else []))
    web = os.path.join(tmp, name + "-web")
    os.makedirs(os.path.join(web, "img"))
    for n, b in (("index.html", INDEX), ("app-Z3K9Q2WD.js", JS), ("app-7QX2K4LM.css", CSS),
                 ("img/logo.png", PNG), ("robots.txt", b"User-agent: *\n"),
                 (".hidden", b"dot files are not served")):
        open(os.path.join(web, n), "wb").write(b)
    open(os.path.join(tmp, name + "-secret.txt"), "wb").write(SECRET)
    return data, web


def cookie_of(hd):
    for c in hd.get("set-cookie", []):
        if c.startswith("mk_session="):
            return c
    return None


def token_of(set_cookie):
    return set_cookie.split(";")[0].split("=", 1)[1]


def events(data, user):
    out = []
    p = os.path.join(data, "users", user, "audit.log")
    if os.path.exists(p):
        for line in open(p):
            m = re.search(r'"event":"([a-z.]+)"', line)
            if m:
                out.append((m.group(1), line))
    return out


def wait(cond, what, bound=10):
    t0 = time.monotonic()
    while time.monotonic() - t0 < bound:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def hubdb(data, sql, *args):
    db = sqlite3.connect(os.path.join(data, "hub.db"), timeout=30)
    try:
        cur = db.execute(sql, args)
        rows = cur.fetchall()
        db.commit()
        return rows
    finally:
        db.close()


# --- static files --------------------------------------------------------------


def security_headers(hd, what):
    check(hd.get("content-security-policy") == CSP, what + ": CSP %r" % hd.get(
        "content-security-policy"))
    check(hd.get("x-content-type-options") == "nosniff", what + ": nosniff")
    check(hd.get("referrer-policy") == "no-referrer", what + ": Referrer-Policy")
    check(hd.get("x-frame-options") == "DENY", what + ": X-Frame-Options")


def t_static(tmp):
    data, web = setup(tmp, "static")
    s = Serve(data, tmp, "static", "--web-root", web)
    try:
        check(any("web app: 5 files from " + web in l for l in s.lines), "load line: %r" % s.lines)
        for path in ("/", "/index.html"):
            st, hd, body = s.req("GET", path)
            check(st == 200 and body == INDEX, "%s: %d %r" % (path, st, body[:80]))
            check(hd["content-type"] == "text/html; charset=utf-8", path + " type")
            check(hd.get("cache-control") == "no-cache", path + " cache: %r" % hd)
            check(re.fullmatch(r'"[0-9a-f]{16,}"', hd.get("etag", "")), path + " etag")
            security_headers(hd, path)
        # A hashed asset: immutable; gzip when accepted (and only then).
        st, hd, body = s.req("GET", "/assets/app-Z3K9Q2WD.js")
        check(st == 200 and body == JS and "content-encoding" not in hd, "js plain")
        check(hd["content-type"] == "text/javascript; charset=utf-8", "js type")
        check(hd.get("cache-control") == "public, max-age=31536000, immutable", "js cache")
        check(hd.get("vary") == "Accept-Encoding", "js vary")
        security_headers(hd, "js")
        etag = hd["etag"]
        st, hd, gz = s.req("GET", "/assets/app-Z3K9Q2WD.js",
                           headers={"Accept-Encoding": "br, gzip;q=0.8"})
        check(st == 200 and hd.get("content-encoding") == "gzip", "js gzip: %r" % hd)
        check(len(gz) < len(JS) // 4 and gzip.decompress(gz) == JS, "gzip body")
        check(hd.get("etag") == etag, "same etag for the gzip copy")
        st, hd, body = s.req("GET", "/assets/app-Z3K9Q2WD.js",
                             headers={"Accept-Encoding": "gzip;q=0, identity"})
        check(body == JS and "content-encoding" not in hd, "gzip;q=0 refused gzip")
        # 304 on the ETag (in a list, weak); a different one gets the file.
        for inm in (etag, 'W/' + etag, '"x", ' + etag, "*"):
            st, hd, body = s.req("GET", "/assets/app-Z3K9Q2WD.js",
                                 headers={"If-None-Match": inm})
            check(st == 304 and body == b"", "304 for %r: %d" % (inm, st))
            check(hd.get("etag") == etag, "304 etag")
            security_headers(hd, "304")
        st, hd, body = s.req("GET", "/assets/app-Z3K9Q2WD.js", headers={"If-None-Match": '"0"'})
        check(st == 200 and body == JS, "other etag: %d" % st)
        st, hd, body = s.req("GET", "/", headers={"If-None-Match": s.req("GET", "/")[1]["etag"]})
        check(st == 304, "index 304")
        # CSS, a picture in a folder (not gzipped), an unhashed name.
        st, hd, body = s.req("GET", "/assets/app-7QX2K4LM.css", headers={"Accept-Encoding": "gzip"})
        check(st == 200 and hd["content-type"] == "text/css; charset=utf-8", "css")
        check(gzip.decompress(body) == CSS, "css gzip")
        st, hd, body = s.req("GET", "/assets/img/logo.png", headers={"Accept-Encoding": "gzip"})
        check(st == 200 and body == PNG and hd["content-type"] == "image/png", "png")
        check("content-encoding" not in hd, "png not gzipped")
        st, hd, body = s.req("GET", "/assets/robots.txt")
        check(st == 200 and hd.get("cache-control") == "no-cache", "unhashed name: no-cache")
        # HEAD: the headers, no body; other methods: 405.
        st, hd, body = s.req("HEAD", "/assets/app-Z3K9Q2WD.js")
        check(st == 200 and body == b"" and hd.get("etag") == etag, "HEAD")
        st, hd, body = s.req("POST", "/", body=b"x")
        check(st == 405 and "GET" in hd.get("allow", ""), "POST /: %d" % st)
        # A body is refused before it is read: announce 5 MB, send none.
        c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        c.sendall(b"PUT /assets/app-Z3K9Q2WD.js HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 5000000\r\n\r\n")
        answer = c.recv(4096)
        check(answer.startswith(b"HTTP/1.1 405"), "PUT with a body: %r" % answer[:60])
        c.close()
        st, hd, body = s.req("GET", "/", body=b"x" * 10)
        check(st == 405, "GET with a body: %d" % st)
        # Traversal and everything not an exact name of the table: 404 (or,
        # outside /assets/, no file at all); the secret never comes back.
        for path in ("/assets/../hub.db", "/assets/..%2fhub.db", "/assets/%2e%2e/%2e%2e/hub.db",
                     "/assets/%2e%2e%2f%2e%2e%2fstatic-secret.txt", "/assets/../../static-secret.txt",
                     "/assets/.hidden", "/assets/%2ehidden", "/assets//etc/passwd",
                     "/assets/img/../app-Z3K9Q2WD.js", "/assets/./app-Z3K9Q2WD.js",
                     "/assets/img%2f..%2fapp-Z3K9Q2WD.js", "/assets/index.html",
                     "/assets/app-Z3K9Q2WD.js%00.png", "/assets/", "/assets/img",
                     "/assets/APP-Z3K9Q2WD.JS", "/assets/" + web + "/index.html",
                     "/assets/%2fetc%2fpasswd"):
            st, hd, body = s.req("GET", path)
            check(st == 404, "%s: %d" % (path, st))
            check(SECRET not in body and b"SQLite" not in body and b"root:" not in body,
                  path + " leaked")
            security_headers(hd, path)
        for path in ("/../hub.db", "/%2e%2e/hub.db", "/static-secret.txt", "/hub.db"):
            st, hd, body = s.req("GET", path)
            check(st in (400, 401, 404), "%s: %d" % (path, st))
            check(SECRET not in body and b"SQLite" not in body, path + " leaked")
        # The files are served from memory: removed from disk, still there.
        os.unlink(os.path.join(web, "robots.txt"))
        st, hd, body = s.req("GET", "/assets/robots.txt")
        check(st == 200 and body == b"User-agent: *\n", "served from memory")
        # The access log names the files, no session.
        log = open(s.log).read()
        check(" GET /assets/app-Z3K9Q2WD.js 304 " in log, "access log: " + log[-400:])
    finally:
        s.stop()


def t_no_web_root(tmp):
    data, web = setup(tmp, "noweb")
    s = Serve(data, tmp, "noweb", "--web-root", os.path.join(tmp, "no-such-dir"))
    try:
        check(any("web app: none" in l and "build-web.sh" in l for l in s.lines),
              "note: %r" % s.lines)
        for path in ("/", "/index.html", "/assets/app.js"):
            st, hd, body = s.req("GET", path)
            check(st == 404 and b"scripts/build-web.sh" in body, "%s: %d %r" % (path, st, body))
            check(hd["content-type"].startswith("text/html"), path + " html")
            security_headers(hd, path)
        # The API goes on as ever.
        st, hd, body = s.req("GET", "/healthz")
        check(st == 200, "healthz")
    finally:
        s.stop()


# --- sessions --------------------------------------------------------------------


def t_session(tmp):
    data, web = setup(tmp, "sess")
    s = Serve(data, tmp, "sess", "--web-root", web, "--web-session-days", "2",
              "--web-session-idle-days", "1")
    try:
        # Not JSON: 415; no body: 411; a big one: 413 before it is read.
        st, hd, body = s.req("POST", "/mailkeep/session", body=b"username=alice",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        check(st == 415, "form post: %d" % st)
        st, hd, body = s.req("POST", "/mailkeep/session")
        check(st == 411, "no body: %d" % st)
        st, hd, body = s.req("POST", "/mailkeep/session", body=b"{" + b" " * 5000 + b"}",
                             headers={"Content-Type": "application/json"})
        check(st == 413, "big body: %d" % st)
        st, hd, body = s.req("POST", "/mailkeep/session", body={"username": "alice"})
        check(st == 400, "no password: %d" % st)
        # Wrong password: 401, the documented detail, no cookie, no Basic
        # challenge (a browser would pop up its own dialog).
        st, hd, body = s.signin("alice", "not it")
        check(st == 401, "wrong password: %d" % st)
        j = json.loads(body)
        check(j["type"] == "about:blank" and j["detail"] == "wrong user name or password", body)
        check(cookie_of(hd) is None, "cookie on a failed sign-in")
        st, hd, body = s.signin("nobody", "x")
        check(st == 401 and json.loads(body)["detail"] == "wrong user name or password", "nobody")

        # Sign in: the cookie and its flags, the body.
        st, hd, body = s.signin("alice", ALICE_PW, headers={"User-Agent": "websession-test/1"})
        check(st == 200, "sign-in: %d %s" % (st, body))
        c = cookie_of(hd)
        check(c is not None and re.fullmatch(
            r"mk_session=[A-Za-z0-9_-]{43}; Path=/; HttpOnly; SameSite=Strict; Max-Age=172800",
            c), "cookie: %r" % c)
        check(hd.get("cache-control") == "no-store", "sign-in cacheable")
        j = json.loads(body)
        check(set(j) == {"user", "sessionId", "csrf", "zeroAccess", "unlockedUntil"}, body)
        check(j["user"] == "alice" and isinstance(j["sessionId"], int) and j["sessionId"] > 0, body)
        check(re.fullmatch(r"[A-Za-z0-9_-]{43}", j["csrf"]), "csrf form")
        check(j["zeroAccess"] is False and j["unlockedUntil"] is None, body)
        token = token_of(c)
        check(token not in body.decode(), "token in the body")
        # The CSRF token is what the contract says, recomputed from the cookie.
        import hashlib
        mac = hashlib.blake2b(b"mailkeep-csrf", key=token.encode(), digest_size=32).digest()
        check(base64.urlsafe_b64encode(mac).rstrip(b"=").decode() == j["csrf"], "csrf value")
        # Only a hash is stored.
        rows = hubdb(data, "SELECT token_hash, user_agent, address FROM web_sessions")
        check(len(rows) == 1 and len(rows[0][0]) == 32 and token.encode() not in rows[0][0],
              "stored: %r" % rows)
        check(rows[0][1] == "websession-test/1" and rows[0][2] == "127.0.0.1", "%r" % rows)
        ck = {"Cookie": "theme=dark; mk_session=" + token + "; other=1"}
        sid = j["sessionId"]

        # GET /mailkeep/session: the same body; without the cookie 401.
        st, hd, body = s.req("GET", "/mailkeep/session", headers=ck)
        check(st == 200 and json.loads(body) == j, "GET session: %d %s" % (st, body))
        st, hd, body = s.req("GET", "/mailkeep/session")
        check(st == 401 and "basic" not in hd.get("www-authenticate", "").lower(),
              "GET session without cookie: %d %r" % (st, hd))
        st, hd, body = s.req("GET", "/mailkeep/session", headers={"Cookie": "mk_session=" +
                                                                   "A" * 43})
        check(st == 401 and "basic" not in hd.get("www-authenticate", "").lower(), "bad cookie")
        # A browser's fetch without the cookie gets no Basic challenge;
        # other clients still do.
        st, hd, body = s.req("GET", "/.well-known/jmap", headers={"Sec-Fetch-Mode": "cors"})
        check(st == 401 and "basic" not in hd["www-authenticate"].lower(), "fetch 401")
        st, hd, body = s.req("GET", "/.well-known/jmap")
        check(st == 401 and "Basic" in hd["www-authenticate"], "curl 401")

        # The cookie works wherever a device token does; GET needs no CSRF.
        st, hd, body = s.req("GET", "/.well-known/jmap", headers=ck)
        check(st == 200 and json.loads(body)["username"] == "alice", "session object: %d" % st)
        api = {"using": ["urn:ietf:params:jmap:core"],
               "methodCalls": [["Core/echo", {"hello": 1}, "0"]]}
        # Other methods: without the CSRF header, or a wrong one: 403.
        st, hd, body = s.req("POST", "/jmap/api", api, headers=ck)
        check(st == 403 and b"X-Mailkeep-CSRF" in body, "no csrf: %d %s" % (st, body))
        st, hd, body = s.req("POST", "/jmap/api", api,
                             headers=dict(ck, **{"X-Mailkeep-CSRF": j["csrf"][:-1] + "A"
                                                 if j["csrf"][-1] != "A" else j["csrf"][:-1] + "B"}))
        check(st == 403, "wrong csrf: %d" % st)
        st, hd, body = s.req("POST", "/jmap/api", api,
                             headers=dict(ck, **{"X-Mailkeep-CSRF": j["csrf"] + "x"}))
        check(st == 403, "long csrf: %d" % st)
        st, hd, body = s.req("POST", "/jmap/api", api, headers=dict(ck, **{"X-Mailkeep-CSRF":
                                                                        j["csrf"]}))
        check(st == 200 and json.loads(body)["methodResponses"][0][0] == "Core/echo",
              "api with csrf: %d %s" % (st, body))
        # Basic (and so Bearer) requests need no CSRF header.
        basic = "Basic " + base64.b64encode(("alice:" + ALICE_PW).encode()).decode()
        st, hd, body = s.req("POST", "/jmap/api", api, headers={"Authorization": basic})
        check(st == 200, "basic api: %d" % st)
        # /mailkeep/signin with the cookie makes no device token.
        st, hd, body = s.req("POST", "/mailkeep/signin", b"",
                             headers=dict(ck, **{"X-Mailkeep-CSRF": j["csrf"]}))
        check(st == 400, "signin with cookie: %d" % st)
        # The access log's label: alice/web-ID.
        wait(lambda: (" POST /jmap/api 200 " in open(s.log).read()), "access log")
        check(re.search(r" POST /jmap/api 200 \d+ \d+ms alice/web-%d\n" % sid, open(s.log).read()),
              "label: " + open(s.log).read()[-600:])

        # Event source with the cookie; signing out ends it.
        es = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        es.sendall(("GET /jmap/eventsource?types=*&closeafter=no&ping=0 HTTP/1.1\r\n"
                    "Host: x\r\nCookie: mk_session=%s\r\n\r\n" % token).encode())
        head = b""
        while b"event: state" not in head:
            chunk = es.recv(4096)
            check(chunk != b"", "event source closed early: %r" % head)
            head += chunk
        check(head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head, head[:200])

        # Sign-out: CSRF needed; then 204, the cookie cleared, the row gone.
        st, hd, body = s.req("POST", "/mailkeep/session/signout", headers=ck)
        check(st == 403, "signout without csrf: %d" % st)
        st, hd, body = s.req("POST", "/mailkeep/session/signout",
                             headers=dict(ck, **{"X-Mailkeep-CSRF": j["csrf"]}))
        check(st == 204 and body == b"", "signout: %d" % st)
        c = cookie_of(hd)
        check(c is not None and c.startswith("mk_session=;") and "Max-Age=0" in c, "clear: %r" % c)
        check(hubdb(data, "SELECT count(*) FROM web_sessions")[0][0] == 0, "row kept")
        # The event source ends within the push thread's round.
        es.settimeout(10)
        t0 = time.monotonic()
        try:
            while es.recv(4096):
                check(time.monotonic() - t0 < 8, "event source still open")
        except socket.timeout:
            raise AssertionError("event source not closed after sign-out")
        es.close()
        for path in ("/mailkeep/session", "/.well-known/jmap"):
            st, hd, body = s.req("GET", path, headers=ck)
            check(st == 401, "%s after signout: %d" % (path, st))
        ev = [e for e, _ in events(data, "alice")]
        check(ev.count("web.signin") == 1 and ev.count("web.signout") == 1, "audit: %r" % ev)

        # Expiry: absolute (expires in the past) and idle (unused for more
        # than the 1 day of --web-session-idle-days).
        for what, sql in (("absolute", "UPDATE web_sessions SET expires = ?"),
                          ("idle", "UPDATE web_sessions SET last_used = ?")):
            st, hd, body = s.signin("alice", ALICE_PW)
            check(st == 200, what + " sign-in")
            tk = {"Cookie": cookie_of(hd).split(";")[0]}
            st, hd, body = s.req("GET", "/mailkeep/session", headers=tk)
            check(st == 200, what + " before")
            now = int(time.time())
            hubdb(data, sql, now - 1 if what == "absolute" else now - 86400 - 5)
            st, hd, body = s.req("GET", "/mailkeep/session", headers=tk)
            check(st == 401, "%s expiry: %d" % (what, st))
            check(hubdb(data, "SELECT count(*) FROM web_sessions")[0][0] == 0,
                  what + ": expired row kept")

        # Revoked behind its back (as WebSession/set destroy does): the
        # cookie stops at once.
        st, hd, body = s.signin("alice", ALICE_PW)
        tk = {"Cookie": cookie_of(hd).split(";")[0]}
        hubdb(data, "DELETE FROM web_sessions")
        st, hd, body = s.req("GET", "/.well-known/jmap", headers=tk)
        check(st == 401, "revoked: %d" % st)

        # The sign-in limits are Basic's: ten wrong a minute, then 429.
        codes = []
        for i in range(12):
            st, hd, body = s.signin("alice", "wrong %d" % i)
            codes.append(st)
            if st == 429:
                check(int(hd.get("retry-after", "0")) > 0, "Retry-After")
                break
        check(429 in codes, "no 429 after %r" % codes)
    finally:
        s.stop()


def t_zero_access(tmp):
    data, web = setup(tmp, "za")
    s = Serve(data, tmp, "za", "--web-root", web)
    try:
        st, hd, body = s.signin("zed", ZED_PW)
        check(st == 200, "zed sign-in: %d %s" % (st, body))
        j = json.loads(body)
        check(j["zeroAccess"] is True and isinstance(j["unlockedUntil"], str) and
              re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", j["unlockedUntil"]), body)
        ck = {"Cookie": cookie_of(hd).split(";")[0]}
        ev = events(data, "zed")
        unlocked = [l for e, l in ev if e == "lease.unlocked"]
        check(len(unlocked) == 1 and '"device":"-%d"' % j["sessionId"] in unlocked[0],
              "lease.unlocked: %r" % unlocked)
        st, hd, body = s.req("GET", "/mailkeep/session", headers=ck)
        check(st == 200 and json.loads(body)["unlockedUntil"] == j["unlockedUntil"], body)
        # The lease outlives the push thread's rounds while the session is there.
        time.sleep(1.5)
        check(not [e for e, _ in events(data, "zed") if e == "lease.wiped"], "wiped early")
        # Sign-out wipes it.
        st, hd, body = s.req("POST", "/mailkeep/session/signout",
                             headers=dict(ck, **{"X-Mailkeep-CSRF": j["csrf"]}))
        check(st == 204, "signout: %d" % st)
        wiped = [l for e, l in events(data, "zed") if e == "lease.wiped"]
        check(len(wiped) == 1 and '"reason":"signout"' in wiped[0], "wiped: %r" % wiped)
        # A new sign-in unlocks again; revoking the session (the row deleted)
        # wipes the lease within the lease thread's round.
        st, hd, body = s.signin("zed", ZED_PW)
        check(st == 200 and json.loads(body)["unlockedUntil"] is not None, "again")
        hubdb(data, "DELETE FROM web_sessions")
        wait(lambda: any('"reason":"revoked"' in l for e, l in events(data, "zed")
                         if e == "lease.wiped"), "revocation wipe")
        # A wrong passphrase opens nothing.
        st, hd, body = s.signin("zed", "not the passphrase")
        check(st == 401 and cookie_of(hd) is None, "zed wrong: %d" % st)
        run([BIN, "--data", data, "audit", "--user", "zed", "--verify"])
    finally:
        s.stop()


def t_secure_cookie(tmp):
    data, web = setup(tmp, "secure")
    s = Serve(data, tmp, "secure", "--web-root", web, "--public-url", "https://mail.example.org")
    try:
        st, hd, body = s.signin("alice", ALICE_PW)
        c = cookie_of(hd)
        check(st == 200 and c.endswith("; Max-Age=2592000; Secure"), "secure cookie: %r" % c)
    finally:
        s.stop()


SCENARIOS = {
    "static": t_static,
    "no_web_root": t_no_web_root,
    "session": t_session,
    "zero_access": t_zero_access,
    "secure_cookie": t_secure_cookie,
}

if __name__ == "__main__":
    run_scenarios(SCENARIOS, "mk-websession-test-", sys.argv[1:])
