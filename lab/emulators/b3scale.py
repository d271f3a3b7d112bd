#!/usr/bin/env python3
"""EMULATOR of b3scale's REST API (/api/v1), for tests. NOT b3scale.

Imitates the backend management part of b3scale/b3scale closely enough for
the rollout lab, with Python's standard library only. There is no PostgreSQL,
no meetings resource, recordings or commands; of the BBB front API only
`create` is routed.

Written from the public sources, not copied from them (file names are the
real ones):
  - pkg/http/api/api.go, resource.go, backends.go: GET /api/v1 and
    /api/v1/status; /api/v1/backends GET (admin scope; ?host=, ?host__like=,
    ?host__ilike= filters, ordered by host), POST (admin or node scope; a node
    token becomes the backend's agent_ref); /api/v1/backends/:id GET and PATCH
    (admin or node; a node only sees backends whose agent_ref is its sub),
    DELETE (admin; ?force=true deletes at once and answers admin_state
    "destroyed", otherwise admin_state "decommissioned" and the backend is
    removed once it has no running meeting).
  - pkg/http/auth/jwt.go with echo-jwt v4: "Authorization: Bearer <JWT>",
    HS384 with B3SCALE_API_JWT_SECRET; claims sub and scope (space-separated:
    b3scale, b3scale:admin, b3scale:node, b3scale:recordings, b3scale:callback).
    No/malformed header: 401 {"message":"missing or malformed jwt"}; bad
    signature, other algorithm, expired (exp <= now) or not yet valid (nbf):
    401 {"message":"invalid or expired jwt"}; missing scope: 403
    {"message":"b3scale:admin scope required"} (scopes joined with ", ").
  - pkg/store/backend_state.go and the 0001/0002 migrations: JSON fields and
    order id, node_state, admin_state, agent_heartbeat, agent_ref, last_error,
    latency (nanoseconds), meetings_count, attendees_count, load_factor (a
    REAL column, so float32 precision), bbb{host,secret}, settings{tags},
    created_at, updated_at, synced_at; admin_state defaults to "ready",
    node_state starts "init"; host and agent_ref are unique (a duplicate is a
    database error: 500 {"message":"Internal Server Error"}); an id that is
    not a UUID is a database error too.
  - validation (Validate): bbb.host required and must start with "http",
    bbb.secret required: 400 {"error":"validation_error","message":"validation
    failed with input","fields":{...}}.
  - node refresh (pkg/cluster/backend.go refreshNodeState): getMeetings with a
    SHA256 checksum; a transport error or a non-SUCCESS answer sets node_state
    "error" and last_error; success clears last_error, sets latency and
    synced_at, and sets node_state "ready" only when admin_state is "ready";
    meetings_count and attendees_count come from the meetings and their
    <attendee> lists. Creating or updating a backend triggers a refresh at once.
  - node agent (pkg/http/api/agents.go, cmd/b3scaleagent): GET
    /api/v1/agent/backend and POST /api/v1/agent/heartbeat need the
    b3scale:node scope and find the backend whose agent_ref is the token's sub
    (404 {"message":"Not Found"} when the agent has not registered one); a
    heartbeat sets agent_heartbeat to now and answers {backend_id, heartbeat}.
    A backend an admin created has agent_ref null: no agent can ever send its
    heartbeats. Routing (pkg/cluster/router.go SelectBackend,
    IsNodeReady/IsAgentAlive in pkg/store/backend_state.go) takes only
    backends with admin_state and node_state "ready" and agent_heartbeat
    within the last AGENT_ALIVE_SECONDS (5) seconds; `routable()` here is that
    rule, and the node refresh reports it in the history.
  - routing (pkg/http/bbb_request_middleware.go, pkg/bbb/request.go Verify,
    pkg/cluster/router.go SelectBackend, pkg/cluster/gateway.go Dispatch):
    POST /api/v1/frontends (admin scope; bbb {key, secret} required, active is
    always true on create) adds a frontend. GET /bbb/<key>/bigbluebutton/api/
    create?...&checksum= checks the checksum over "create" + the query without
    checksum + the frontend's secret (SHA-1 up to 40 hex digits, SHA-256
    above); a wrong one answers 500 <returncode>FAILED</returncode>
    checksumError "Checksums do not match"; an unknown key 500 ERROR
    b3scale_server_error "no such frontend for key: K". The backend is the
    least loaded (meetings_count * load_factor) of the routable ones; none:
    500 FAILED b3scaleGatewayError "no free backend available for meeting".
    The call goes to the backend signed with SHA-256 and its secret, and its
    answer is passed back. Simplification: the meeting ID is not rewritten
    and the meeting is not remembered (join, end, ... are not routed).
  - schema (pkg/store/schema/manager.go, pkg/http/api/ctl_migrate.go,
    cmd/b3scalectl `db migrate`): b3scaled never migrates by itself. Until
    POST /api/v1/ctrl/migrate (admin scope; what `b3scalectl db migrate`
    calls) ran, /api/v1/status reports migrated false, migration null and
    pending_migrations 2, and every query of a table fails with a database
    error: 500 {"message":"Internal Server Error"}. The state file keeps
    whether the schema was migrated.

Deliberate simplifications:
  - the refresh runs every --poll-interval seconds for every backend (the real
    controller syncs nodes whose synced_at is older than 20 s, every 10-12 s).
  - /api/v1/status reports an emulated database that is always available.
  - the other resources answer 404 {"message":"Not Found"} after authentication.

Emulator-only endpoints (not b3scale, no authentication):
  GET  /emulator/history  every change of a backend's admin_state/node_state
                          (and creates, deletes) as [{t, id, host, admin_state, node_state, ...}]
  POST /emulator/reset    forget all backends and history

Clock: --clock-offset SECONDS runs the emulator on a clock that is off by that
much (positive: ahead), as b3scale on a host whose clock is wrong: token
expiry (golang-jwt v5 through echo-jwt: exp checked with no leeway, iat not
checked), timestamps and the Date header of every answer follow it.

Tokens for tests and the lab: `b3scale.py mint-token --sub NAME --scopes
b3scale:admin [--ttl SECONDS]` prints a token signed with
B3SCALE_API_JWT_SECRET, like `b3scalectl auth create_access_token`.

Network: binds only --listen (default 127.0.0.1:42353); contacts only the BBB
API URLs of the backends in its own state; never uses a proxy, never follows
redirects.
"""

import argparse
import base64
import copy
import datetime
import email.utils
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import ssl
import struct
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = "b3scale-emulator"
VERSION = "lab-emulator"
MAX_BODY = 1 << 20
HISTORY_LIMIT = 20000
SCOPE_ADMIN = "b3scale:admin"
SCOPE_NODE = "b3scale:node"
INSTANCE_STATES = ("init", "ready", "error", "stopped", "decommissioned")
NOT_EMULATED = ("frontends", "meetings", "commands", "recordings", "recordings-visibility",
                "recordings-import", "protected", "callbacks")
# pkg/store/backend_state.go IsAgentAlive and pkg/cluster/router.go: a heartbeat older than
# this many seconds makes the backend unroutable.
AGENT_ALIVE_SECONDS = 5.0
# pkg/store/schema/migrations: 0001_initial_tables.sql, 0002_node_agent_api.sql
MIGRATIONS = ((1, "initial tables"), (2, "node agent api"))
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


class HTTPError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def reply(status, obj):
    # echo's c.JSON: application/json, json.Encoder output ends with a newline
    return status, {"Content-Type": "application/json"}, (json.dumps(obj, separators=(",", ":")) + "\n").encode()


# --------------------------------------------------------------------------
# JWT (HS384), as echo-jwt + golang-jwt v5 check it
# --------------------------------------------------------------------------

def _b64d(segment):
    if "=" in segment:  # golang-jwt decodes with RawURLEncoding: no padding
        raise ValueError("illegal base64 data")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64e(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def verify_token(token, secret, now=None):
    """Return the claims of a valid token; raise ValueError otherwise."""
    now = time.time() if now is None else now
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("token contains an invalid number of segments")
    header = json.loads(_b64d(parts[0]))
    if not isinstance(header, dict) or header.get("alg") != "HS384":
        raise ValueError("unexpected jwt signing method=%s" % (header.get("alg") if isinstance(header, dict) else None))
    expected = hmac.new(secret.encode(), (parts[0] + "." + parts[1]).encode(), hashlib.sha384).digest()
    if not hmac.compare_digest(expected, _b64d(parts[2])):
        raise ValueError("signature is invalid")
    claims = json.loads(_b64d(parts[1]))
    if not isinstance(claims, dict):
        raise ValueError("invalid claims")
    for key in ("scope", "sub", "jti", "iss"):
        if key in claims and claims[key] is not None and not isinstance(claims[key], str):
            raise ValueError("cannot unmarshal %s" % key)
    for key in ("exp", "nbf", "iat"):
        if key in claims and claims[key] is not None and (
                isinstance(claims[key], bool) or not isinstance(claims[key], (int, float))):
            raise ValueError("invalid type for claim %s" % key)
    if claims.get("exp") is not None and not now < claims["exp"]:
        raise ValueError("token is expired")
    if claims.get("nbf") is not None and now < claims["nbf"]:
        raise ValueError("token is not valid yet")
    return claims


def mint_token(secret, sub, scopes, ttl=None, now=None):
    """Like auth.NewClaims(sub).WithScopes(...).WithLifetime(ttl).Sign(secret)."""
    now = int(time.time() if now is None else now)
    claims = {"scope": " ".join(scopes), "sub": sub, "iat": now,
              "jti": "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(24))}
    if ttl:
        claims["exp"] = now + int(ttl)
    head = _b64e(json.dumps({"alg": "HS384", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64e(json.dumps(claims, separators=(",", ":")).encode())
    sig = _b64e(hmac.new(secret.encode(), (head + "." + body).encode(), hashlib.sha384).digest())
    return head + "." + body + "." + sig


# --------------------------------------------------------------------------
# Value formatting (Go / PostgreSQL semantics)
# --------------------------------------------------------------------------

def go_time(ts):
    """time.Time from a PostgreSQL TIMESTAMP, JSON-encoded (RFC 3339, microseconds)."""
    dt = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    frac = ("%06d" % dt.microsecond).rstrip("0")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + ("." + frac if frac else "") + "Z"


AGENT_HEARTBEAT_DEFAULT = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc).timestamp()


def real32(value):
    """A PostgreSQL REAL column keeps float32 precision."""
    return struct.unpack("f", struct.pack("f", float(value)))[0]


def go_number(value):
    """encoding/json writes float64 1.0 as 1."""
    return int(value) if float(value).is_integer() and abs(value) < 1e21 else value


# --------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------

class B3scale:
    def __init__(self, jwt_secret, state_file=None, poll_interval=20.0, request_timeout=5.0, log=None,
                 clock_offset=0.0):
        self.jwt_secret = jwt_secret
        # The host's clock error in seconds (positive: ahead). Everything b3scale reads from
        # its clock (token expiry, timestamps, the HTTP Date header) reads this clock.
        self.clock_offset = float(clock_offset)
        self.state_file = state_file
        self.poll_interval = max(0.05, float(poll_interval))
        self.request_timeout = request_timeout
        self.log = log or (lambda msg: None)
        self.lock = threading.RLock()
        self.backends = {}
        self.history = []
        self.migrated_at = None  # b3scaled does not migrate its database by itself
        self.frontends = {}
        self._stop = threading.Event()
        self._poll_lock = threading.Lock()
        self._thread = None
        self._load()

    # -- persistence ----------------------------------------------------------
    def _load(self):
        if not self.state_file:
            return
        try:
            with open(self.state_file, encoding="utf-8") as f:
                doc = json.load(f)
            self.backends = doc.get("backends", {})
            self.history = doc.get("history", [])
            self.migrated_at = doc.get("migrated_at")
            self.frontends = doc.get("frontends", {})
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError) as e:
            self.log("state file %s unreadable (%s), starting empty" % (self.state_file, e))

    def _save(self):
        if not self.state_file:
            return
        tmp = self.state_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"backends": self.backends, "history": self.history, "migrated_at": self.migrated_at,
                       "frontends": self.frontends}, f, indent=1)
        os.replace(tmp, self.state_file)

    def _record(self, b, event, **extra):
        entry = {"t": round(self.now(), 3), "id": b["id"], "host": b["host"], "admin_state": b["admin_state"],
                 "node_state": b["node_state"], "meetings_count": b["meetings_count"],
                 "attendees_count": b["attendees_count"], "event": event}
        entry.update(extra)
        self.history.append(entry)
        del self.history[:-HISTORY_LIMIT]

    # -- refresh (poller) -------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self._loop, name="node-sync", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.request_timeout + 2)

    def _loop(self):
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as e:
                self.log("refresh error: %r" % (e,))
            if self._stop.wait(self.poll_interval):
                break

    def poll_once(self, only=None):
        with self._poll_lock:
            with self.lock:
                ids = [only] if only else list(self.backends)
            threads = [threading.Thread(target=self._refresh, args=(i,), daemon=True) for i in ids]
            for t in threads:
                t.start()
            deadline = time.monotonic() + self.request_timeout + 1
            for t in threads:
                t.join(timeout=max(0.0, deadline - time.monotonic()))
            with self.lock:
                self._decommission()
                self._save()

    def refresh_soon(self, backend_id):
        """Creating/updating a backend queues an UpdateNodeState command."""
        threading.Thread(target=self.poll_once, args=(backend_id,), daemon=True).start()

    def _refresh(self, backend_id):
        with self.lock:
            b = self.backends.get(backend_id)
            if b is None:
                return
            host, secret = b["host"], b["secret"]
        base = host if host.endswith("/") else host + "/"
        url = base + "getMeetings?checksum=" + hashlib.sha256(("getMeetings" + secret).encode()).hexdigest()
        t0 = time.monotonic()
        outcome = None
        try:
            req = urllib.request.Request(url, headers={"User-Agent": NAME})
            try:
                with _OPENER.open(req, timeout=self.request_timeout) as resp:
                    data = resp.read(MAX_BODY)
            except urllib.error.HTTPError as e:
                data = e.read(MAX_BODY) if e.fp else b""
            latency_ns = int((time.monotonic() - t0) * 1e9)
            root = ET.fromstring(data)
            code = root.findtext("returncode") or ""
            if code != "SUCCESS":
                outcome = ("error", "%s: %s" % (root.findtext("messageKey") or "", root.findtext("message") or ""))
            else:
                meetings = root.findall("./meetings/meeting")
                outcome = ("ok", latency_ns, len(meetings),
                           sum(len(m.findall("./attendees/attendee")) for m in meetings),
                           sum(1 for m in meetings if (m.findtext("running") or "") == "true"))
        except ET.ParseError as e:
            outcome = ("error", "expected element type <response> but have %s" % e)
        except (OSError, ValueError) as e:
            outcome = ("error", 'Get "%s": %s' % (url, getattr(e, "reason", e)))
        with self.lock:
            b = self.backends.get(backend_id)
            if b is None:
                return
            before = (b["admin_state"], b["node_state"])
            now = self.now()
            if outcome[0] == "error":
                b["node_state"] = "error"
                b["last_error"] = outcome[1]
            else:
                _, latency, mcount, acount, running = outcome
                b["synced_at"] = now
                b["last_error"] = None
                b["latency"] = latency
                if b["admin_state"] == "ready":
                    b["node_state"] = "ready"
                b["meetings_count"], b["attendees_count"], b["running_meetings"] = mcount, acount, running
            b["updated_at"] = now
            if (b["admin_state"], b["node_state"]) != before:
                self._record(b, "refresh", last_error=b["last_error"], routable=routable(b, now))

    def _decommission(self):
        for bid, b in list(self.backends.items()):
            if b["admin_state"] == "decommissioned" and b.get("running_meetings", 0) == 0:
                del self.backends[bid]
                self._record(b, "decommissioned-removed")
                self.log("backend %s (%s) decommissioned and removed" % (bid, b["host"]))

    # -- HTTP routing -------------------------------------------------------------
    def route(self, method, path, query, headers, body):
        if path in ("", "/"):
            return 200, {"Content-Type": "text/html; charset=UTF-8"}, b"<h1>B3Scale! v.%s (emulator)</h1>" % VERSION.encode()
        if path.startswith("/emulator/"):
            return self.emulator_route(method, path.rstrip("/"))
        if path.startswith("/bbb/"):
            return self.front(path, query)
        if not (path == "/api/v1" or path.startswith("/api/v1/")):
            return reply(404, {"message": "Not Found"})
        try:
            claims = self.authenticate(headers)
            return self.api(method, path[len("/api/v1"):].rstrip("/"), urllib.parse.parse_qs(query), claims, headers,
                            body)
        except ValidationFailed as e:
            return reply(400, {"error": "validation_error", "message": e.message, "fields": e.fields})
        except HTTPError as e:
            return reply(e.status, {"message": e.message})

    def now(self):
        """This host's clock: the real time plus --clock-offset."""
        return time.time() + self.clock_offset

    def authenticate(self, headers):
        auth = headers.get("Authorization") or ""
        if len(auth) <= 7 or auth[:7].lower() != "bearer ":
            raise HTTPError(401, "missing or malformed jwt")
        try:
            claims = verify_token(auth[7:], self.jwt_secret, now=self.now())
        except (ValueError, TypeError, UnicodeDecodeError):
            raise HTTPError(401, "invalid or expired jwt")
        return {"sub": claims.get("sub") or "", "scopes": (claims.get("scope") or "").split(" ")}

    @staticmethod
    def require(claims, *scopes):
        if not any(s in claims["scopes"] for s in scopes):
            raise HTTPError(403, ", ".join(scopes) + " scope required")

    def api(self, method, rest, query, claims, headers, body):
        if rest in ("", "/status"):
            if method != "GET":
                raise HTTPError(405, "Method Not Allowed")
            return reply(200, {
                "version": VERSION, "build": "0000000", "api": "v1", "account_ref": claims["sub"],
                "is_admin": SCOPE_ADMIN in claims["scopes"], "database": self.schema_status(),
            })
        if rest == "/ctrl/migrate":
            if method != "POST":
                raise HTTPError(405, "Method Not Allowed")
            self.require(claims, SCOPE_ADMIN)
            with self.lock:
                if self.migrated_at is None:
                    self.migrated_at = self.now()
                    self._save()
                    self.log("database migrated to version %d" % MIGRATIONS[-1][0])
            return reply(200, self.schema_status())
        if rest == "/frontends" and method == "POST":
            self.require(claims, SCOPE_ADMIN)
            self.need_schema()
            return self.create_frontend(headers, body)
        if rest in ("/agent/backend", "/agent/heartbeat"):
            return self.agent(method, rest, claims)
        parts = rest.strip("/").split("/")
        if parts[0] != "backends" or len(parts) > 2:
            raise HTTPError(404, "Not Found")
        if len(parts) == 1:
            if method == "GET":
                self.require(claims, SCOPE_ADMIN)
                self.need_schema()
                return self.list_backends(query)
            if method == "POST":
                self.require(claims, SCOPE_ADMIN, SCOPE_NODE)
                self.need_schema()
                return self.create_backend(claims, headers, body)
            raise HTTPError(405, "Method Not Allowed")
        bid = urllib.parse.unquote(parts[1])
        if method in ("GET", "PATCH", "DELETE"):
            self.require(claims, *((SCOPE_ADMIN,) if method == "DELETE" else (SCOPE_ADMIN, SCOPE_NODE)))
            self.need_schema()
        if method == "GET":
            with self.lock:
                return reply(200, backend_json(self._get(bid, claims)))
        if method == "PATCH":
            self.require(claims, SCOPE_ADMIN, SCOPE_NODE)
            return self.update_backend(bid, claims, headers, body)
        if method == "DELETE":
            self.require(claims, SCOPE_ADMIN)
            return self.destroy_backend(bid, claims, query)
        raise HTTPError(405, "Method Not Allowed")

    def create_frontend(self, headers, body):
        data = bind(headers, body)
        bbb = data.get("bbb") if isinstance(data.get("bbb"), dict) else None
        if bbb is None:
            raise ValidationFailed({"bbb": ["this field is required"]})
        key, secret = str(bbb.get("key") or "").strip(), str(bbb.get("secret") or "").strip()
        fields = {}
        if not key:
            fields["bbb.key"] = ["this field is required"]
        if not secret:
            fields["bbb.secret"] = ["this field is required"]
        if fields:
            raise ValidationFailed(fields)
        now = self.now()
        with self.lock:
            if any(f["bbb"]["key"] == key for f in self.frontends.values()):
                raise HTTPError(500, "Internal Server Error")  # key is UNIQUE
            f = {"id": str(uuid.uuid4()), "active": True, "bbb": {"key": key, "secret": secret},
                 "settings": data.get("settings") or {}, "account_ref": None,
                 "created_at": go_time(now), "updated_at": go_time(now)}
            self.frontends[f["id"]] = f
            self._save()
        return reply(200, f)

    def front(self, path, query):
        """The BBB API of a frontend: /bbb/<key>/bigbluebutton/api/<call>; only create."""
        tokens = path[len("/bbb"):].split("/")
        key, resource = (tokens[1], tokens[-1]) if len(tokens) >= 3 else ("", "")
        with self.lock:
            fe = next((f for f in self.frontends.values() if f["bbb"]["key"] == key), None)
        if fe is None:
            return bbb_xml(500, "ERROR", "b3scale_server_error", "no such frontend for key: %s" % key)
        params = urllib.parse.parse_qs(query, keep_blank_values=True)
        checksum = (params.get("checksum") or [""])[0]
        unsigned = re.sub(r"&checksum(=[^&]*)?|^checksum(=[^&]*)?&?", "", query)
        algo = hashlib.sha256 if len(checksum) > 40 else hashlib.sha1
        expected = algo((resource + unsigned + fe["bbb"]["secret"]).encode()).hexdigest()
        if not hmac.compare_digest(expected.encode(), checksum.encode()):
            return bbb_xml(500, "FAILED", "checksumError", "Checksums do not match")
        if resource != "create":
            return bbb_xml(500, "FAILED", "b3scaleGatewayError", "not emulated: %s" % resource)
        now = self.now()
        with self.lock:
            ready = [dict(b) for b in self.backends.values() if routable(b, now)]
        if not ready:
            return bbb_xml(500, "FAILED", "b3scaleGatewayError", "no free backend available for meeting")
        ready.sort(key=lambda b: b["meetings_count"] * b["load_factor"])
        b = ready[0]
        base = b["host"] if b["host"].endswith("/") else b["host"] + "/"
        sig = hashlib.sha256(("create" + unsigned + b["secret"]).encode()).hexdigest()
        url = base + "create?" + (unsigned + "&" if unsigned else "") + "checksum=" + sig
        try:
            with _OPENER.open(urllib.request.Request(url, headers={"User-Agent": NAME}),
                              timeout=self.request_timeout) as resp:
                return resp.status, {"Content-Type": "application/xml"}, resp.read(MAX_BODY)
        except urllib.error.HTTPError as e:
            return e.code, {"Content-Type": "application/xml"}, (e.read(MAX_BODY) if e.fp else b"")
        except (OSError, ValueError) as e:
            return bbb_xml(500, "FAILED", "b3scaleGatewayError", "Get %s: %s" % (base + "create", e))

    def need_schema(self):
        """After the scope check, the handler's first query: before migration the table does
        not exist (relation "backends" does not exist), a database error."""
        with self.lock:
            if self.migrated_at is None:
                raise HTTPError(500, "Internal Server Error")

    def schema_status(self):
        """schema.Manager.Status: before migration no meta table, so no version."""
        with self.lock:
            done = self.migrated_at is not None
            applied = self.migrated_at
        version, name = MIGRATIONS[-1]
        return {"available": True, "database": "b3scale", "migrated": done,
                "migration": {"applied_at": go_time(applied), "description": name, "version": version}
                if done else None,
                "pending_migrations": 0 if done else len(MIGRATIONS), "error": None}

    def agent(self, method, rest, claims):
        """pkg/http/api/agents.go: the backend whose agent_ref is the node token's sub."""
        want = "GET" if rest == "/agent/backend" else "POST"
        if method != want:
            raise HTTPError(405, "Method Not Allowed")
        self.require(claims, SCOPE_NODE)
        self.need_schema()
        with self.lock:
            mine = [b for b in self.backends.values() if b["agent_ref"] == claims["sub"]]
            if not mine:
                raise HTTPError(404, "Not Found")
            b = mine[0]
            if rest == "/agent/backend":
                return reply(200, backend_json(b))
            b["agent_heartbeat"] = self.now()
            self._save_soon()
            return reply(200, {"backend_id": b["id"], "heartbeat": go_time(b["agent_heartbeat"])})

    def _save_soon(self):
        """Heartbeats come every second from every agent: the state file is written at the
        next poll instead of on each one."""

    def _get(self, bid, claims):
        if not UUID_RE.match(bid):
            raise HTTPError(500, "Internal Server Error")  # PostgreSQL: invalid input syntax for type uuid
        b = self.backends.get(str(uuid.UUID(bid)))
        if b is None or (SCOPE_NODE in claims["scopes"] and b["agent_ref"] != claims["sub"]):
            raise HTTPError(404, "Not Found")
        return b

    def list_backends(self, query):
        host = (query.get("host") or [""])[0]
        like = (query.get("host__like") or [""])[0]
        ilike = (query.get("host__ilike") or [""])[0].lower()
        with self.lock:
            found = [b for b in self.backends.values()
                     if (not host or b["host"] == host) and (not like or like in b["host"])
                     and (not ilike or ilike in b["host"].lower())]
            found.sort(key=lambda b: b["host"])
            return reply(200, [backend_json(b) for b in found])

    def create_backend(self, claims, headers, body):
        data = bind(headers, body)
        now = self.now()
        b = {
            "id": str(uuid.uuid4()), "node_state": "init", "admin_state": "ready",
            "agent_heartbeat": AGENT_HEARTBEAT_DEFAULT, "agent_ref": None, "last_error": None, "latency": 0,
            "meetings_count": 0, "attendees_count": 0, "running_meetings": 0, "load_factor": 1.0,
            "host": "", "secret": "", "settings": {"tags": None},
            "created_at": now, "updated_at": now, "synced_at": now,
        }
        has_bbb = apply_fields(b, data)
        if not b["admin_state"]:
            b["admin_state"] = "ready"
        if not b["load_factor"]:
            b["load_factor"] = 1.0
        validate(b, has_bbb)
        if SCOPE_NODE in claims["scopes"]:
            b["agent_ref"] = claims["sub"]
        with self.lock:
            self._check_db_constraints(b)
            b["load_factor"] = real32(b["load_factor"])
            self.backends[b["id"]] = b
            self._record(b, "create")
            self._save()
            out = backend_json(b)
        self.log("backend %s created for %s (admin_state %s)" % (b["id"], b["host"], b["admin_state"]))
        self.refresh_soon(b["id"])
        return reply(200, out)

    def update_backend(self, bid, claims, headers, body):
        with self.lock:
            current = self._get(bid, claims)
        data = bind(headers, body)
        with self.lock:
            current = self._get(bid, claims)
            b = copy.deepcopy(current)
            has_bbb = apply_fields(b, data, existing=True)
            validate(b, has_bbb)
            self._check_db_constraints(b)
            b["load_factor"] = real32(b["load_factor"])
            b["updated_at"] = self.now()
            before = (current["admin_state"], current["node_state"])
            current.clear()
            current.update(b)
            if (b["admin_state"], b["node_state"]) != before:
                self._record(b, "update")
            self._save()
            out = backend_json(b)
        self.refresh_soon(b["id"])
        return reply(200, out)

    def destroy_backend(self, bid, claims, query):
        force = (query.get("force") or [""])[0].strip().lower() in ("true", "1", "yes", "on")
        with self.lock:
            b = self._get(bid, claims)
            if force:
                del self.backends[b["id"]]
                out = dict(b, admin_state="destroyed")
                self._record(out, "delete-force")
            else:
                b["admin_state"] = "decommissioned"
                b["updated_at"] = self.now()
                out = b
                self._record(b, "decommission")
            self._save()
            return reply(200, backend_json(out))

    def _check_db_constraints(self, b):
        if b["admin_state"] not in INSTANCE_STATES:
            raise HTTPError(500, "Internal Server Error")  # invalid input value for enum instance_state
        for other in self.backends.values():
            if other["id"] == b["id"]:
                continue
            if other["host"] == b["host"] or (b["agent_ref"] is not None and other["agent_ref"] == b["agent_ref"]):
                raise HTTPError(500, "Internal Server Error")  # unique constraint violation

    # -- emulator-only --------------------------------------------------------------
    def emulator_route(self, method, path):
        if path == "/emulator/history" and method == "GET":
            with self.lock:
                return reply(200, list(self.history))
        if path == "/emulator/reset" and method == "POST":
            with self.lock:
                self.backends.clear()
                self.history.clear()
                self._save()
            return reply(200, {"reset": True})
        return reply(404, {"error": "unknown emulator endpoint"})


def bind(headers, body):
    """echo's Bind for a JSON body."""
    if not body:
        return {}
    ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise HTTPError(415, "Unsupported Media Type")
    try:
        data = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise HTTPError(400, "Syntax error: %s" % e)
    if not isinstance(data, dict):
        raise HTTPError(400, "Unmarshal type error: expected=store.BackendState, got=%s" % type(data).__name__)
    return data


def _type_error(field, expected, value):
    raise HTTPError(400, "Unmarshal type error: expected=%s, got=%s, field=%s"
                    % (expected, type(value).__name__, field))


def apply_fields(b, data, existing=False):
    """Copy the well-known fields (bbb, settings, admin_state, load_factor), like json.Unmarshal would."""
    has_bbb = True  # InitBackendState always creates a bbb.Backend on create
    if "bbb" in data:
        bbb = data["bbb"]
        if bbb is None:
            b["host"], b["secret"] = "", ""
            has_bbb = not existing  # on update a null bbb stays nil and fails validation
        elif isinstance(bbb, dict):
            for key in ("host", "secret"):
                if key in bbb:
                    if bbb[key] is not None and not isinstance(bbb[key], str):
                        _type_error("bbb." + key, "string", bbb[key])
                    if bbb[key] is not None:
                        b[key] = bbb[key]
        else:
            _type_error("bbb", "bbb.Backend", bbb)
    if "settings" in data and data["settings"] is not None:
        s = data["settings"]
        if not isinstance(s, dict):
            _type_error("settings", "store.BackendSettings", s)
        if "tags" in s:
            tags = s["tags"]
            if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
                _type_error("settings.tags", "[]string", tags)
            b["settings"] = {"tags": tags}
    if "admin_state" in data and data["admin_state"] is not None:
        if not isinstance(data["admin_state"], str):
            _type_error("admin_state", "string", data["admin_state"])
        b["admin_state"] = data["admin_state"]
    if "load_factor" in data and data["load_factor"] is not None:
        lf = data["load_factor"]
        if isinstance(lf, bool) or not isinstance(lf, (int, float)):
            _type_error("load_factor", "float64", lf)
        b["load_factor"] = float(lf)
    return has_bbb


def validate(b, has_bbb):
    fields = {}
    if not has_bbb:
        fields["bbb"] = ["this field is required"]
    else:
        if b["host"] == "":
            fields.setdefault("bbb.host", []).append("this field is required")
        if not b["host"].startswith("http"):
            fields.setdefault("bbb.host", []).append("should start with http(s)://")
        if b["secret"].strip() == "":
            fields.setdefault("bbb.secret", []).append("this field is required")
    if fields:
        raise ValidationFailed(fields)


class ValidationFailed(HTTPError):
    def __init__(self, fields):
        super().__init__(400, "validation failed with input")
        self.fields = fields


def bbb_xml(status, returncode, key, message):
    """bbb.XMLResponse as b3scale writes its own errors."""
    def esc(s):
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    body = ("<response><returncode>%s</returncode><message>%s</message><messageKey>%s</messageKey></response>"
            % (returncode, esc(message), esc(key))).encode()
    return status, {"Content-Type": "application/xml"}, body


def routable(b, now=None):
    """Whether b3scale's router would pick the backend for a new meeting now (SelectBackend):
    admin_state and node_state "ready", and a heartbeat of its agent within the last
    AGENT_ALIVE_SECONDS."""
    now = time.time() if now is None else now
    return (b["admin_state"] == "ready" and b["node_state"] == "ready"
            and now - b["agent_heartbeat"] <= AGENT_ALIVE_SECONDS)


def backend_json(b):
    return {
        "id": b["id"],
        "node_state": b["node_state"],
        "admin_state": b["admin_state"],
        "agent_heartbeat": go_time(b["agent_heartbeat"]),
        "agent_ref": b["agent_ref"],
        "last_error": b["last_error"],
        "latency": b["latency"],
        "meetings_count": b["meetings_count"],
        "attendees_count": b["attendees_count"],
        "load_factor": go_number(b["load_factor"]),
        "bbb": {"host": b["host"], "secret": b["secret"]},
        "settings": {"tags": (b["settings"] or {}).get("tags")},
        "created_at": go_time(b["created_at"]),
        "updated_at": go_time(b["updated_at"]),
        "synced_at": go_time(b["synced_at"]),
    }


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the b3scale BBB client does not follow redirects either


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


# --------------------------------------------------------------------------
# HTTP server and main
# --------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    server_version = NAME
    sys_version = ""
    timeout = 30

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def _handle(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY:
            return self._send(*reply(413, {"message": "Request Entity Too Large"}))
        body = self.rfile.read(length) if length > 0 else b""
        path, _, query = self.path.partition("?")
        try:
            result = self.server.app.route(self.command, path, query, self.headers, body)
        except ValidationFailed as e:
            result = reply(400, {"error": "validation_error", "message": e.message, "fields": e.fields})
        except HTTPError as e:
            result = reply(e.status, {"message": e.message})
        except Exception as e:  # an emulator bug must not kill the server
            sys.stderr.write("%s: internal error: %r\n" % (NAME, e))
            result = reply(500, {"message": "Internal Server Error"})
        self._send(*result)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def date_time_string(self, timestamp=None):
        # Go's net/http writes a Date header on every answer, from the host's clock.
        return email.utils.formatdate(self.server.app.now() if timestamp is None else timestamp, usegmt=True)

    def _send(self, status, headers, body):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, app, quiet=False):
        self.app = app
        self.quiet = quiet
        super().__init__(address, Handler)

    def finish_request(self, request, client_address):
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(10)
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError):
                return  # the client refused our certificate, or went away
        super().finish_request(request, client_address)


def parse_listen(value):
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError("expected ADDRESS:PORT, got %r" % value)
    return host.strip("[]"), int(port)


def serve_tls(server, cert, key):
    """Serves HTTPS on SERVER with CERT and KEY (PEM files), as the nginx in front of the real
    system terminates TLS. The handshake runs in each request's own thread (a client that
    refuses the certificate closes only its own connection)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    secret = os.environ.get("B3SCALE_API_JWT_SECRET", "")
    if argv and argv[0] == "mint-token":
        p = argparse.ArgumentParser(prog="b3scale.py mint-token", description="print a signed API token")
        p.add_argument("--sub", required=True)
        p.add_argument("--scopes", required=True, help="comma or space separated, e.g. b3scale:admin")
        p.add_argument("--ttl", type=int, default=0, help="lifetime in seconds (0: no exp claim)")
        a = p.parse_args(argv[1:])
        if not secret:
            sys.exit("B3SCALE_API_JWT_SECRET is not set")
        print(mint_token(secret, a.sub, [s for s in re.split(r"[,\s]+", a.scopes) if s], a.ttl or None))
        return 0
    p = argparse.ArgumentParser(description="EMULATOR of the b3scale REST API for tests (not b3scale).")
    p.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 42353), help="ADDRESS:PORT")
    p.add_argument("--state", help="JSON file kept up to date on every change")
    p.add_argument("--poll-interval", type=float, default=20.0, help="seconds between node refreshes")
    p.add_argument("--request-timeout", type=float, default=5.0, help="timeout of each getMeetings call")
    p.add_argument("--quiet", action="store_true", help="no access log")
    p.add_argument("--clock-offset", type=float, default=0.0,
                   help="seconds this host's clock is off (positive: ahead), as on a host without NTP")
    p.add_argument("--tls-cert", help="PEM certificate (chain): serve HTTPS, as the real system's nginx does")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = p.parse_args(argv)
    if not secret:
        sys.exit("%s: B3SCALE_API_JWT_SECRET must be set (b3scale refuses to start without it)" % NAME)

    def log(msg):
        sys.stderr.write("%s: %s\n" % (NAME, msg))
        sys.stderr.flush()

    app = B3scale(secret, state_file=args.state, poll_interval=args.poll_interval,
                  request_timeout=args.request_timeout, log=log, clock_offset=args.clock_offset)
    server = Server(args.listen, app, quiet=args.quiet)
    if args.tls_cert:
        serve_tls(server, args.tls_cert, args.tls_key or args.tls_cert)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    serve = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    serve.start()
    app.start()
    host, port = server.server_address[:2]
    print("%s listening on %s:%d (EMULATOR for tests, not b3scale)" % (NAME, host, port), flush=True)
    while not stop.wait(0.5):
        pass
    app.stop()
    server.shutdown()
    server.server_close()
    serve.join(timeout=5)
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
