#!/usr/bin/env python3
"""EMULATOR of Scalelite's server-management API, for tests. NOT Scalelite.

Imitates /scalelite/api/* of blindsidenetworks/scalelite (v1.8.x) and its poller
closely enough for the rollout lab, with Python's standard library only. There
is no Redis, no PostgreSQL and no recordings; of the BBB front API
(/bigbluebutton/api) only `create` exists (see below).

Written from the public sources, not copied from them (file names are the
real ones):
  - routes (config/routes.rb): GET getServers, getServerInfo, getTenants,
    getTenantInfo; POST addServer, updateServer, deleteServer, panicServer,
    addTenant, updateTenant, deleteTenant. Any other route, or a wrong method,
    answers the XML error unsupportedRequest with HTTP 200 (errors#unsupported_request).
  - checksum (app/controllers/concerns/api_helper.rb): HEX(SHA(action +
    query string without the checksum + secret)), the algorithm chosen by the
    checksum length (40 SHA1, 64 SHA256, 128 SHA512) and allowed by
    LOADBALANCER_CHECKSUM_ALGORITHM (default SHA1:SHA256:SHA512); secrets from
    LOADBALANCER_SECRET and LOADBALANCER_SECRETS (colon list); the JSON body
    is not part of the checksum. Failures answer HTTP 200 with the XML
    <returncode>FAILED</returncode><messageKey>checksumError</messageKey>.
  - a POST with a body must be application/json, else XML unsupportedContentType
    (Api::ScaleliteApiController#verify_content_type), checked before the checksum.
  - status codes and JSON bodies of Api::ServersController, e.g. 404
    {"error":"No servers are configured"}, 201 on addServer, 400
    {"error":"Server needs a URL and a secret"}, 404 {"error":"Couldn't find
    server with id=X"}, 400 {"error":"Invalid state parameter: X"}.
  - server JSON: id, url, secret, tag, bbb_version, state, load (number or
    "unavailable"), load_multiplier (a decimal string, as Rails renders
    BigDecimal), online ("online"/"offline"). New servers start disabled.
  - JSON bodies without a "server" key are wrapped under "server", as Rails'
    ParamsWrapper does for this controller.
  - poller (lib/tasks/poll.rake, app/models/server.rb): getMeetings with a
    SHA256 checksum (SHA512/SHA1 only if LOADBALANCER_CHECKSUM_ALGORITHM says
    so); load = sum over non-breakout meetings of (participantCount +
    moderatorCount), at least LOAD_MIN_USER_COUNT (15) for meetings younger
    than LOAD_JOIN_BUFFER_TIME minutes (15), times load_multiplier;
    SERVER_HEALTHY_THRESHOLD (1) / SERVER_UNHEALTHY_THRESHOLD (2); a cordoned
    server whose load is 0 becomes disabled; disabled servers carry no load.
    bbb_version comes from the API index's <bbbVersion>. An online server that
    fails SERVER_UNHEALTHY_THRESHOLD polls in a row goes offline ("Panicking and
    setting offline"): the meetings Scalelite created on it are destroyed and
    `end` (with their moderatorPW) is sent to it for each; the history entry
    carries "meetings_ended". The poll interval is --poll-interval (env
    POLL_INTERVAL; real default 60 s, the `poll[interval]` task argument).
  - updateServer state=disable on a loaded server does NOT end meetings in the
    real API (only `rake servers:disable` does, after asking "yes"); the real
    Scalelite then refuses joins to those meetings. The emulator does the same
    and marks the history entry with "disabled_with_load": true, because a
    rollout must never do this.

  - front API create (app/controllers/bigbluebutton_api_controller.rb#create,
    app/models/meeting.rb allocate_voice_bridge): checksum as for the server
    API (action "create"); the meeting goes to the enabled, online server with
    the lowest load (noAvailableServers when none); its voiceBridge is
    replaced by a fresh VOICE_BRIDGE_LEN-digit number (default 9, first digit
    1-9, never 99999, unique among the emulator's meetings) unless
    USE_EXTERNAL_VOICE_BRIDGE=true, and the create is passed on to that server
    with its secret. The node's answer is returned as it is (the real one
    renders its own XML with the same fields).

Deliberate simplifications:
  - Scalelite keeps meetings created through its own BBB front API; the
    emulator has none. panicServer therefore asks the server for getMeetings
    and ends each meeting with an `end` call (meetingID + moderatorPW); if
    getMeetings fails it ends nothing, if an end call fails it answers 400
    {"error":"Couldn't disable server id=X"} like the real one.
  - poll results are applied to the server's current record under a lock, so
    an API change made during a poll is not overwritten.
  - tenants: multitenancy is off, so the tenant endpoints answer 412
    {"message":"Multitenancy is disabled"} after the checksum check.
  - SERVER_ID_IS_HOSTNAME=true (what the roles deploy): addServer gives the
    server its URL's host as id, as Server#save! does (URI.parse(url).host,
    ASCII-lowercased: the port is not part of it, an IPv6 address keeps its
    brackets), so two URLs on one host cannot both be added; the second, and a
    URL without a host, answers 500 with Rails' stock error page text, as the
    unhandled RecordNotSaved / NoMethodError does (add_server rescues nothing).

Emulator-only endpoints (not Scalelite, no checksum):
  GET  /emulator/history  every change of a server's state/online (and adds,
                          deletes, panics) as [{t, id, state, online, load, event, ...}]
  GET  /emulator/state    all server records including poll counters
  POST /emulator/reset    forget all servers and history

Network: binds only --listen (default 127.0.0.1:8080); contacts only the BBB
API URLs of the servers in its own state; never uses a proxy, never follows
redirects.
"""

import argparse
import hashlib
import hmac
import json
import os
import random
import re
import signal
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = "scalelite-emulator"
MAX_BODY = 1 << 20
HISTORY_LIMIT = 20000
CHECKSUM_LENGTHS = {40: "SHA1", 64: "SHA256", 128: "SHA512"}
JSON_MIMES = ("application/json", "text/x-json", "application/jsonrequest")
GET_ROUTES = {"getServers", "getServerInfo", "getTenants", "getTenantInfo"}
POST_ROUTES = {"addServer", "updateServer", "deleteServer", "panicServer",
               "addTenant", "updateTenant", "deleteTenant"}
RAILS_500 = (b"<!DOCTYPE html>\n<html>\n<head><title>We're sorry, but something went wrong (500)</title></head>\n"
             b"<body><h1>We're sorry, but something went wrong.</h1></body>\n</html>\n")


def uri_host(url):
    """The id Server#save! gives with SERVER_ID_IS_HOSTNAME=true (app/models/server.rb,
    v1.8.5): URI.parse(url).host.downcase(:ascii). The host as written in the URL (an IPv6
    address keeps its brackets, a port is not part of it), ASCII letters lowercased; None
    where Ruby fails (no host, not ASCII: InvalidURIError or nil.downcase), which Scalelite
    answers with a 500."""
    try:
        netloc = urllib.parse.urlsplit(url).netloc
    except ValueError:
        return None
    if not netloc or not netloc.isascii():
        return None
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        end = hostport.find("]")
        host = hostport[:end + 1] if end > 0 else ""
    else:
        host = hostport.partition(":")[0]
    if not host:
        return None
    return host.translate(str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"))


# --------------------------------------------------------------------------
# Settings from the environment (names as in config/application.rb)
# --------------------------------------------------------------------------

def env_int(env, name, default):
    try:
        return int(str(env.get(name, default)).strip())
    except ValueError:
        return default


def env_float(env, name, default):
    try:
        return float(str(env.get(name, default)).strip())
    except ValueError:
        return default


class Settings:
    def __init__(self, env=None):
        env = os.environ if env is None else env
        self.secrets = []
        if env.get("LOADBALANCER_SECRET"):
            self.secrets.append(env["LOADBALANCER_SECRET"])
        if env.get("LOADBALANCER_SECRETS"):
            self.secrets.extend(s for s in env["LOADBALANCER_SECRETS"].split(":"))
        algo_env = env.get("LOADBALANCER_CHECKSUM_ALGORITHM", "")
        self.algorithms = (algo_env or "SHA1:SHA256:SHA512").split(":")
        # api_helper.rb#checksum_algorithm: SHA256 unless the variable is set
        if not algo_env.strip():
            self.outgoing_algorithm = "SHA256"
        elif "SHA512" in self.algorithms:
            self.outgoing_algorithm = "SHA512"
        elif "SHA256" in self.algorithms:
            self.outgoing_algorithm = "SHA256"
        else:
            self.outgoing_algorithm = "SHA1"
        # casecmp?('true'): no stripping, so " true" is false as in Ruby
        self.id_is_hostname = env.get("SERVER_ID_IS_HOSTNAME", "false").lower() == "true"
        self.load_min_user_count = env_int(env, "LOAD_MIN_USER_COUNT", 15)
        self.load_join_buffer_minutes = env_int(env, "LOAD_JOIN_BUFFER_TIME", 15)
        self.healthy_threshold = env_int(env, "SERVER_HEALTHY_THRESHOLD", 1)
        self.unhealthy_threshold = env_int(env, "SERVER_UNHEALTHY_THRESHOLD", 2)
        self.request_timeout = env_float(env, "CONNECT_TIMEOUT", 5.0)
        self.poller_threads = max(1, env_int(env, "POLLER_THREADS", 5) - 1)
        self.poller_wait_timeout = env_float(env, "POLLER_WAIT_TIMEOUT", 10.0)
        self.voice_bridge_len = env_int(env, "VOICE_BRIDGE_LEN", 9)
        self.use_external_voice_bridge = env.get("USE_EXTERNAL_VOICE_BRIDGE", "false").strip().lower() == "true"


# --------------------------------------------------------------------------
# Ruby/Rails value semantics the API exposes
# --------------------------------------------------------------------------

def blank(v):
    """ActiveSupport's blank?: nil, false, whitespace strings, empty collections."""
    if v is None or v is False:
        return True
    if isinstance(v, str):
        return v.strip() == ""
    if isinstance(v, (list, dict)):
        return len(v) == 0
    return False


def scalar(v):
    """Strong parameters permit scalars only; anything else is dropped."""
    return v if v is None or isinstance(v, (str, int, float, bool)) else None


def to_d(v):
    """Ruby's #to_d: the leading number of a string, 0 when there is none."""
    if isinstance(v, bool):
        return Decimal(0)
    if isinstance(v, (int, float)):
        return Decimal(str(v))
    m = re.match(r"\s*([-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?)", str(v or ""))
    try:
        return Decimal(m.group(1)) if m else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def bigdecimal_str(d):
    """Rails renders BigDecimal as a string like "1.0" or "2.5"."""
    d = Decimal(d)
    if d == d.to_integral_value():
        return "%d.0" % int(d)
    return format(d.normalize(), "f")


def ruby_str(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def www_form(pairs):
    """Ruby URI.encode_www_form: unreserved *-._ and alphanumerics, space as '+'."""
    def enc(s):
        out = []
        for byte in s.encode("utf-8"):
            c = chr(byte)
            if c.isascii() and (c.isalnum() or c in "*-._"):
                out.append(c)
            elif c == " ":
                out.append("+")
            else:
                out.append("%%%02X" % byte)
        return "".join(out)
    return "&".join(enc(k) if v is None else enc(k) + "=" + enc(str(v)) for k, v in pairs)


def parse_query(query):
    """Rack-style query parsing with one level of brackets (server[state]=x)."""
    params = {}
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        m = re.match(r"^([^\[\]]+)\[([^\[\]]*)\]$", key)
        if m:
            inner = params.setdefault(m.group(1), {})
            if isinstance(inner, dict):
                inner[m.group(2)] = value
        else:
            params[key] = value
    return params


def xml_error(key, message):
    body = ('<?xml version="1.0"?>\n<response>\n  <returncode>FAILED</returncode>\n'
            "  <messageKey>%s</messageKey>\n  <message>%s</message>\n</response>\n"
            % (_esc(key), _esc(message)))
    return 200, {"Content-Type": "application/xml; charset=utf-8"}, body.encode("utf-8")


def _esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def json_reply(status, obj):
    return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(obj).encode("utf-8")


# --------------------------------------------------------------------------
# HTTP client towards BBB (poller, panic)
# --------------------------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


class BBBError(Exception):
    pass


def encode_bbb_uri(action, base_url, secret, algorithm, params=()):
    """api_helper.rb#encode_bbb_uri: base + '/' + action, checksum over the encoded params."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    query = www_form(params)
    checksum = hashlib.new(algorithm.lower(), (action + query + secret).encode("utf-8")).hexdigest()
    url = urllib.parse.urljoin(base, action)
    return url + "?" + www_form(list(params) + [("checksum", checksum)])


def bbb_get(url, timeout):
    """get_post_req: GET, parse XML, require returncode SUCCESS."""
    req = urllib.request.Request(url, headers={"User-Agent": NAME})
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            data = resp.read(MAX_BODY)
    except urllib.error.HTTPError as e:
        data = e.read(MAX_BODY) if e.fp else b""
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        raise BBBError("Response did not include returncode")
    code = root.findtext("returncode")
    if code is None:
        raise BBBError("Response did not include returncode")
    if code != "SUCCESS":
        raise BBBError("%s: %s" % (root.findtext("messageKey"), root.findtext("message")))
    return root


def _int_text(node, path):
    try:
        return int((node.findtext(path) or "0").strip())
    except ValueError:
        return 0


# --------------------------------------------------------------------------
# The emulator
# --------------------------------------------------------------------------

class Scalelite:
    def __init__(self, settings=None, state_file=None, poll_interval=60.0, log=None):
        self.settings = settings or Settings()
        self.state_file = state_file
        self.poll_interval = max(0.05, float(poll_interval))
        self.log = log or (lambda msg: None)
        self.lock = threading.RLock()
        self.servers = {}
        self.history = []
        # meetingID -> (server id, voice bridge), for meetings created through the front API
        self.meetings = {}
        self.moderator_pws = {}  # meetingID -> moderatorPW given to create (Meeting#moderator_pw)
        self._stop = threading.Event()
        self._poll_lock = threading.Lock()
        self._thread = None
        self._load()

    # -- persistence --------------------------------------------------------
    def _load(self):
        if not self.state_file:
            return
        try:
            with open(self.state_file, encoding="utf-8") as f:
                doc = json.load(f)
            self.servers = doc.get("servers", {})
            self.history = doc.get("history", [])
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError) as e:
            self.log("state file %s unreadable (%s), starting empty" % (self.state_file, e))

    def _save(self):
        if not self.state_file:
            return
        tmp = self.state_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"servers": self.servers, "history": self.history}, f, indent=1)
        os.replace(tmp, self.state_file)

    def _record(self, server, event, **extra):
        entry = {"t": round(time.time(), 3), "id": server["id"], "state": display_state(server),
                 "online": server["online"], "load": server["load"], "event": event}
        entry.update(extra)
        self.history.append(entry)
        del self.history[:-HISTORY_LIMIT]

    # -- poller ---------------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self._poll_loop, name="poller", daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.settings.poller_wait_timeout + 1)

    def _poll_loop(self):
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as e:  # keep polling like the real poller does
                self.log("poll error: %r" % (e,))
            if self._stop.wait(self.poll_interval):
                break

    def poll_once(self):
        with self._poll_lock:
            with self.lock:
                targets = [(s["id"], s["url"], s["secret"]) for s in self.servers.values()]
            gate = threading.Semaphore(self.settings.poller_threads)
            threads = [threading.Thread(target=self._poll_server, args=(t, gate), daemon=True) for t in targets]
            for t in threads:
                t.start()
            deadline = time.monotonic() + self.settings.poller_wait_timeout
            for t in threads:
                t.join(timeout=max(0.0, deadline - time.monotonic()))
            with self.lock:
                self._save()

    def _poll_server(self, target, gate):
        sid, url, secret = target
        s = self.settings
        with gate:
            result, error = None, None
            try:
                root = bbb_get(encode_bbb_uri("getMeetings", url, secret, s.outgoing_algorithm), s.request_timeout)
                result = self._load_from(root)
            except (OSError, BBBError, ValueError) as e:
                error = e
            version = None
            try:
                version = bbb_get(encode_bbb_uri("", url, secret, s.outgoing_algorithm),
                                  s.request_timeout).findtext("bbbVersion") or ""
            except (OSError, BBBError, ValueError):
                pass
        to_end = []
        with self.lock:
            server = self.servers.get(sid)
            if server is None:
                return  # deleted during the poll
            before = (display_state(server), server["online"])
            if error is None:
                self._apply_success(server, result)
            else:
                to_end = self._apply_failure(server, error)
            if version is not None:
                server["bbb_version"] = version
            if (display_state(server), server["online"]) != before:
                extra = {"meetings_ended": len(to_end)} if to_end else {}
                self._record(server, "poll", **extra)
        # poll.rake: a server taken offline has its meetings destroyed in Scalelite and
        # `end` sent to it for each, one failure not stopping the others.
        for mid, mpw in to_end:
            try:
                bbb_get(encode_bbb_uri("end", url, secret, s.outgoing_algorithm,
                                       [("meetingID", mid), ("password", mpw or "")]), s.request_timeout)
            except (OSError, BBBError, ValueError) as e:
                self.log("WARNING: Could not end meeting id=%s: %s" % (mid, e))

    def _load_from(self, root):
        s = self.settings
        threshold = time.time() - s.load_join_buffer_minutes * 60
        total = users = largest = videos = 0
        meetings = root.findall("./meetings/meeting")
        for m in meetings:
            created = _int_text(m, ".//createTime") // 1000
            actual = _int_text(m, ".//participantCount") + _int_text(m, ".//moderatorCount")
            count = _int_text(m, "participantCount")
            users += count
            largest = max(largest, count)
            videos += _int_text(m, "videoCount")
            if (m.findtext(".//isBreakout") or "") == "true":
                continue
            total += max(actual, s.load_min_user_count) if created > threshold else actual
        return {"total": total, "meetings": len(meetings), "users": users, "largest": largest, "videos": videos}

    def _apply_success(self, server, r):
        server["unhealthy_counter"] = 0
        load = float(r["total"] * to_d(server["load_multiplier"]))
        if not server["online"]:
            server["healthy_counter"] += 1
            if server["healthy_counter"] < self.settings.healthy_threshold:
                return
            self.log("Server id=%s is healthy. Bringing back online..." % server["id"])
            server["healthy_counter"] = server["unhealthy_counter"] = 0
            server["online"] = True
        server["load"] = None if is_disabled(server) else load
        if server["state"] == "cordoned" and not (server["load"] or 0.0):
            server["state"] = "disabled"
            server["load"] = None
        server.update(meetings=r["meetings"], users=r["users"], largest_meeting=r["largest"], videos=r["videos"])

    def _apply_failure(self, server, error):
        """A failed poll (called under self.lock). After SERVER_UNHEALTHY_THRESHOLD
        failures in a row an online server goes offline and its meetings are cleared:
        returns [(meetingID, moderatorPW)] of the meetings Scalelite had on it, destroyed
        here, for the caller to `end` on the server (poll.rake does both)."""
        self.log("Failed to get server id=%s status: %s" % (server["id"], error))
        server["healthy_counter"] = 0
        if not server["online"]:
            return []
        server["unhealthy_counter"] += 1
        if server["unhealthy_counter"] < self.settings.unhealthy_threshold:
            return []
        self.log("Server id=%s is unhealthy. Panicking and setting offline..." % server["id"])
        cleared = [mid for mid, (sid, _) in self.meetings.items() if sid == server["id"]]
        to_end = []
        for mid in cleared:
            self.log("Clearing Meeting id=%s" % mid)
            del self.meetings[mid]
            to_end.append((mid, self.moderator_pws.pop(mid, None)))
        server.update(healthy_counter=0, unhealthy_counter=0, load=None, online=False,
                      meetings=0, users=0, largest_meeting=0, videos=0)
        return to_end

    # -- HTTP routing ---------------------------------------------------------
    def route(self, method, path, query, headers, body):
        if path.rstrip("/") in ("", "/health_check"):
            return 200, {"Content-Type": "text/plain; charset=utf-8"}, b"success"
        if path.startswith("/emulator/"):
            return self.emulator_route(method, path.rstrip("/"))
        if path.rstrip("/") == "/bigbluebutton/api/create":
            return self.front_create(query)
        m = re.match(r"^/scalelite/api/([A-Za-z]+)$", path)
        action = m.group(1) if m else None
        if action is None or not ((method == "GET" and action in GET_ROUTES)
                                  or (method == "POST" and action in POST_ROUTES)):
            return xml_error("unsupportedRequest", "This request is not supported.")
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if method == "POST" and len(body) > 0 and ctype not in JSON_MIMES:
            return xml_error("unsupportedContentType", "POST request Content-Type is missing or unsupported")
        params = parse_query(query)
        body_params = {}
        if body and ctype in JSON_MIMES:
            try:
                doc = json.loads(body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                return 400, {"Content-Type": "text/html; charset=utf-8"}, b"Bad Request\n"
            body_params = doc if isinstance(doc, dict) else {"_json": doc}
            params.update(body_params)
            if "server" not in params and action.endswith("Server"):
                params["server"] = dict(body_params)  # ParamsWrapper
        if not self.checksum_ok(action, query, params.get("checksum")):
            return xml_error("checksumError", "You did not pass the checksum security check")
        if action.endswith("Tenant") or action.endswith("Tenants") or action == "getTenantInfo":
            return json_reply(412, {"message": "Multitenancy is disabled"})
        if action == "panicServer":
            return self.api_panicServer(params)  # locks around its own state changes, not its BBB calls
        with self.lock:
            return getattr(self, "api_" + action)(params)

    def checksum_ok(self, action, query, checksum):
        s = self.settings
        if not s.secrets or blank(checksum) or not isinstance(checksum, str):
            return False
        algorithm = CHECKSUM_LENGTHS.get(len(checksum))
        if algorithm is None or algorithm not in s.algorithms:
            return False
        esc = re.escape(checksum)
        stripped = re.sub("&checksum=%s|checksum=%s&|checksum=%s" % (esc, esc, esc), "", query)
        check = action + stripped
        return any(hmac.compare_digest(hashlib.new(algorithm.lower(), (check + sec).encode("utf-8")).hexdigest(),
                                       checksum) for sec in s.secrets)

    # -- /scalelite/api actions ------------------------------------------------
    def _find(self, params):
        sid = ruby_str(scalar(params.get("id")))
        server = self.servers.get(sid)
        if server is None:
            return None, json_reply(404, {"error": "Couldn't find server with id=%s" % sid})
        return server, None

    def api_getServers(self, params):
        if not self.servers:
            return json_reply(404, {"error": "No servers are configured"})
        return json_reply(200, [server_json(s) for s in self.servers.values()])

    def api_getServerInfo(self, params):
        server, err = self._find(params)
        return err or json_reply(200, server_json(server))

    def api_addServer(self, params):
        sp = params.get("server")
        if not isinstance(sp, dict) or blank(sp):
            return xml_error("internalError", "param is missing or the value is empty: server")
        url, secret = scalar(sp.get("url")), scalar(sp.get("secret"))
        if blank(url) or blank(secret):
            return json_reply(400, {"error": "Server needs a URL and a secret"})
        lm_raw = scalar(sp.get("load_multiplier"))
        lm = Decimal("1.0") if blank(lm_raw) else to_d(lm_raw)
        if lm == 0:
            lm = Decimal("1.0")
        if self.settings.id_is_hostname:
            sid = uri_host(str(url))
            if not sid or sid in self.servers:
                return 500, {"Content-Type": "text/html; charset=utf-8"}, RAILS_500
        else:
            sid = str(uuid.uuid4())
        tag = scalar(sp.get("tag"))
        server = {
            "id": sid, "url": str(url), "secret": str(secret), "tag": None if blank(tag) else ruby_str(tag),
            "state": None, "load": None, "load_multiplier": bigdecimal_str(lm), "online": False,
            "bbb_version": None, "healthy_counter": 0, "unhealthy_counter": 0,
            "meetings": 0, "users": 0, "largest_meeting": 0, "videos": 0,
        }
        self.servers[sid] = server
        self._record(server, "add")
        self._save()
        self.log("added server id=%s url=%s (disabled)" % (sid, url))
        return json_reply(201, server_json(server))

    def api_updateServer(self, params):
        server, err = self._find(params)
        if err:
            return err
        sp = params.get("server")
        if not isinstance(sp, dict) or blank(sp):
            return json_reply(400, {"error": "param is missing or the value is empty: server"})
        state, lm, secret, tag = (scalar(sp.get(k)) for k in ("state", "load_multiplier", "secret", "tag"))
        new_state = None
        if not blank(state):
            new_state = {"enable": "enabled", "cordon": "cordoned", "disable": "disabled"}.get(state)
            if new_state is None:
                return json_reply(400, {"error": "Invalid state parameter: %s" % ruby_str(state)})
        new_lm = None
        if not blank(lm):
            new_lm = to_d(lm)
            if new_lm == 0:
                return json_reply(400, {"error": "Load-multiplier must be a non-zero number"})
        before = (display_state(server), server["online"])
        old_load = server["load"]
        extra = {}
        if new_state is not None and new_state != server["state"]:
            if new_state == "disabled" and ((old_load or 0) > 0 or server["users"] > 0):
                extra = {"disabled_with_load": True, "load_before": old_load, "users_before": server["users"]}
                self.log("WARNING: server id=%s disabled while it carries load %s: its meetings are cut off "
                         "from new joins (a rollout must cordon and wait instead)" % (server["id"], old_load))
            server["state"] = new_state
        if new_lm is not None:
            server["load_multiplier"] = bigdecimal_str(new_lm)
        if not blank(secret):
            server["secret"] = ruby_str(secret)
        if tag is not None:
            server["tag"] = None if blank(tag) else ruby_str(tag)
        if is_disabled(server):
            server["load"] = None  # Server#save! drops the load of a disabled server
        if (display_state(server), server["online"]) != before or extra:
            self._record(server, "update", **extra)
        self._save()
        return json_reply(200, server_json(server))

    def api_deleteServer(self, params):
        server, err = self._find(params)
        if err:
            return err
        del self.servers[server["id"]]
        self._record(server, "delete")
        self._save()
        return json_reply(200, {"success": "Server id=%s was destroyed" % server["id"]})

    def api_panicServer(self, params):
        with self.lock:
            server, err = self._find(params)
            if err:
                return err
            sid, url, secret = server["id"], server["url"], server["secret"]
        keep_state = not blank(scalar(params.get("keep_state")))
        s = self.settings
        ended = 0
        try:
            root = bbb_get(encode_bbb_uri("getMeetings", url, secret, s.outgoing_algorithm), s.request_timeout)
            meetings = [(m.findtext("meetingID") or "", m.findtext("moderatorPW"))
                        for m in root.findall("./meetings/meeting")]
        except (OSError, BBBError, ValueError):
            meetings = []
        try:
            for mid, mpw in meetings:
                bbb_get(encode_bbb_uri("end", url, secret, s.outgoing_algorithm,
                                       [("meetingID", mid), ("password", mpw)]), s.request_timeout)
                ended += 1
        except (OSError, BBBError, ValueError):
            return json_reply(400, {"error": "Couldn't disable server id=%s" % sid})
        with self.lock:
            server = self.servers.get(sid)
            if server is None:
                return json_reply(400, {"error": "Couldn't disable server id=%s" % sid})
            if not keep_state:
                server["state"] = "disabled"
                server["load"] = None
            self._record(server, "panic", meetings_ended=ended, keep_state=keep_state)
            self._save()
        return json_reply(200, {"success": "Server id=%s has been disabled and the meetings have been destroyed"
                                % sid})

    # -- BBB front API ------------------------------------------------------------
    def allocate_voice_bridge(self, meeting_id, given):
        """Meeting.allocate_voice_bridge: VOICE_BRIDGE_LEN digits, first 1-9, not 99999."""
        s = self.settings
        used = {vb for mid, (_, vb) in self.meetings.items() if mid != meeting_id}
        for tries in range(10):
            if tries == 0 and s.use_external_voice_bridge and given:
                bridge = given
            else:
                bridge = str(random.randint(1, 9)) + "".join(
                    str(random.randint(0, 9)) for _ in range(max(0, s.voice_bridge_len - 1)))
            if bridge != "99999" and bridge not in used:
                return bridge
        raise BBBError("Failed to allocate conference number for meeting %s after 10 tries" % meeting_id)

    def front_create(self, query):
        params = urllib.parse.parse_qsl(query, keep_blank_values=True)
        checksum = dict(params).get("checksum")
        if not self.checksum_ok("create", query, checksum):
            return xml_error("checksumError", "You did not pass the checksum security check")
        mid = dict(params).get("meetingID") or ""
        if not mid:
            return xml_error("missingParamMeetingID", "You must provide a meeting ID")
        with self.lock:
            ready = [s for s in self.servers.values() if s["state"] == "enabled" and s["online"]]
            if not ready:
                return xml_error("noAvailableServers", "No available servers")
            server = min(ready, key=lambda s: s["load"] or 0.0)
            try:
                bridge = self.allocate_voice_bridge(mid, dict(params).get("voiceBridge"))
            except BBBError as e:
                return xml_error("internalError", str(e))
            self.meetings[mid] = (server["id"], bridge)
            self.moderator_pws[mid] = dict(params).get("moderatorPW")
            url, secret = server["url"], server["secret"]
        forward = [(k, v) for k, v in params if k not in ("checksum", "voiceBridge")] + [("voiceBridge", bridge)]
        target = encode_bbb_uri("create", url, secret, self.settings.outgoing_algorithm, forward)
        req = urllib.request.Request(target, headers={"User-Agent": NAME})
        try:
            with _OPENER.open(req, timeout=self.settings.request_timeout) as resp:
                data = resp.read(MAX_BODY)
        except urllib.error.HTTPError as e:
            data = e.read(MAX_BODY) if e.fp else b""
        except (OSError, ValueError) as e:
            return xml_error("internalError", "Unable to create meeting on server %s: %s" % (server["id"], e))
        self.log("create %s on %s (voiceBridge %s)" % (mid, server["id"], bridge))
        return 200, {"Content-Type": "application/xml; charset=utf-8"}, data

    # -- emulator-only ----------------------------------------------------------
    def emulator_route(self, method, path):
        if path == "/emulator/history" and method == "GET":
            with self.lock:
                return json_reply(200, list(self.history))
        if path == "/emulator/state" and method == "GET":
            with self.lock:
                return json_reply(200, {"emulator": NAME, "poll_interval": self.poll_interval,
                                        "servers": list(self.servers.values())})
        if path == "/emulator/reset" and method == "POST":
            with self.lock:
                self.servers.clear()
                self.history.clear()
                self._save()
            return json_reply(200, {"reset": True})
        return json_reply(404, {"error": "unknown emulator endpoint"})


def is_disabled(server):
    return server["state"] in (None, "disabled")


def display_state(server):
    return server["state"] or "disabled"


def server_json(s):
    return {
        "id": s["id"],
        "url": s["url"],
        "secret": s["secret"],
        "tag": s["tag"] or "",
        "bbb_version": s["bbb_version"] or "",
        "state": display_state(s),
        "load": "unavailable" if s["load"] is None else s["load"],
        "load_multiplier": s["load_multiplier"],
        "online": "online" if s["online"] else "offline",
    }


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
            return self._send(413, {"Content-Type": "text/plain"}, b"request body too large\n")
        body = self.rfile.read(length) if length > 0 else b""
        path, _, query = self.path.partition("?")
        query = query.encode("latin-1").decode("utf-8", errors="replace")
        try:
            reply = self.server.app.route(self.command, path, query, self.headers, body)
        except Exception as e:  # an emulator bug must not kill the server
            sys.stderr.write("%s: internal error: %r\n" % (NAME, e))
            reply = (500, {"Content-Type": "text/html; charset=utf-8"}, RAILS_500)
        self._send(*reply)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

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
    p = argparse.ArgumentParser(description="EMULATOR of Scalelite's server API for tests (not Scalelite).")
    p.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 8080), help="ADDRESS:PORT")
    p.add_argument("--state", help="JSON file kept up to date on every change (servers and history)")
    p.add_argument("--poll-interval", type=float,
                   default=env_float(os.environ, "POLL_INTERVAL", 60.0), help="seconds between polls (real: 60)")
    p.add_argument("--quiet", action="store_true", help="no access log")
    p.add_argument("--tls-cert", help="PEM certificate (chain): serve HTTPS, as the real system's nginx does")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = p.parse_args(argv)

    def log(msg):
        sys.stderr.write("%s: %s\n" % (NAME, msg))
        sys.stderr.flush()

    settings = Settings()
    if not settings.secrets:
        log("WARNING: neither LOADBALANCER_SECRET nor LOADBALANCER_SECRETS is set: every API call fails "
            "the checksum, as in Scalelite")
    app = Scalelite(settings, state_file=args.state, poll_interval=args.poll_interval, log=log)
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
    print("%s listening on %s:%d (EMULATOR for tests, not Scalelite)" % (NAME, host, port), flush=True)
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
