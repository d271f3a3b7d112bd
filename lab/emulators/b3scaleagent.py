#!/usr/bin/env python3
"""STAND-IN for b3scale's node agent (b3scaleagent), for tests. NOT b3scaleagent.

Speaks the agent's side of b3scale's API as cmd/b3scaleagent does (main.go,
config.go, heartbeat.go of b3scale/b3scale; names are the real ones), with
Python's standard library only:

  1. Environment: B3SCALE_API_URL and B3SCALE_API_ACCESS_TOKEN (a JWT with
     scope b3scale:node whose sub is the agent's ref, as `b3scalectl auth
     authorize_node_agent --ref REF` makes it), B3SCALE_LOAD_FACTOR (default
     1.0), BBB_CONFIG (default /etc/bigbluebutton/bbb-web.properties). When
     B3SCALE_API_URL is unset, the files .env, /etc/default/b3scale and
     /etc/sysconfig/b3scale are read as the agent reads them (systemd's unit
     passes /etc/default/b3scaleagent). A missing setting is fatal (exit 1).
  2. BBB_CONFIG must hold bigbluebutton.web.serverURL and securitySalt; the
     backend's host is serverURL + "/bigbluebutton/api/" (fatal otherwise).
  3. GET /api/v1/status must answer (fatal otherwise).
  4. GET /api/v1/agent/backend: 404 means no backend is tied to this token's
     ref. Then only with -register (-a, as the packaged unit runs it) the agent
     POSTs /api/v1/backends with bbb {host, secret}, admin_state "init" and
     load_factor; b3scale ties the new backend to the token's sub
     (agent_ref). Without -a it exits 1. Any other error is fatal, e.g. the 500
     of a database that was never migrated. A backend that exists is PATCHed
     with {"backend": ..., "load_factor": ...} (b3scale binds only
     load_factor of it, as the real agent's update does).
  5. POST /api/v1/agent/heartbeat every second, for ever; an error is logged
     and the next beat tried a second later.

Deliberate simplifications: no Redis event monitor (meeting and attendee
events are not forwarded); logs are plain lines on stderr. The unit's
Restart=always is the caller's business.

Network: contacts only B3SCALE_API_URL; never uses a proxy, never follows
redirects. Stops cleanly on SIGTERM.
"""

import argparse
import json
import os
import signal
import sys
import threading
import urllib.error
import urllib.request

NAME = "b3scaleagent-standin"
HEARTBEAT_SECONDS = 1.0  # cmd/b3scaleagent/heartbeat.go: time.Sleep(1 * time.Second)
TIMEOUT = 10.0


class Fatal(Exception):
    pass


def log(msg):
    sys.stderr.write("%s: %s\n" % (NAME, msg))
    sys.stderr.flush()


def load_env_files(paths):
    """config.LoadEnv: KEY=VALUE lines, '#' comments, quotes trimmed; missing files skipped."""
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("#") or "=" not in line:
                continue
            k, v = line.split("=", 1)
            os.environ[k.strip().strip("\"'")] = v.strip().strip("\"'")


def read_properties(path):
    """config.ReadPropertiesFile, enough for bbb-web.properties: key=value, '#' comments."""
    props = {}
    with open(path, encoding="utf-8") as f:
        for line in f.read().splitlines():
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            k, v = line.split("=", 1)
            props[k.strip()] = v.strip()
    return props


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


class Client:
    """pkg/http/api/client: Bearer token, JSON, 404 as 'not found'."""

    def __init__(self, base, token):
        self.base = base.rstrip("/") + "/api/v1/"
        self.token = token

    def call(self, method, resource, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + resource, data=data, method=method,
                                     headers={"Authorization": "Bearer " + self.token,
                                              "Content-Type": "application/json",
                                              "User-Agent": "b3scaleagent/standin"})
        try:
            with _OPENER.open(req, timeout=TIMEOUT) as resp:
                return resp.status, json.loads(resp.read(1 << 20) or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read(1 << 16) if e.fp else b""
            try:
                msg = json.loads(raw).get("message", "")
            except (ValueError, AttributeError):
                msg = raw.decode("utf-8", "replace")[:200]
            return e.code, {"message": msg}


def configure(register):
    """main() up to the heartbeat: the backend this agent keeps alive (its JSON)."""
    if not os.environ.get("B3SCALE_API_URL"):
        load_env_files([".env", "/etc/default/b3scale", "/etc/sysconfig/b3scale"])
    api_url = os.environ.get("B3SCALE_API_URL", "")
    token = os.environ.get("B3SCALE_API_ACCESS_TOKEN", "")
    if not api_url:
        raise Fatal("B3SCALE_API_URL is not configured")
    if not token:
        raise Fatal("B3SCALE_API_ACCESS_TOKEN is not configured")
    bbb_config = os.environ.get("BBB_CONFIG") or "/etc/bigbluebutton/bbb-web.properties"
    try:
        props = read_properties(bbb_config)
    except OSError as e:
        raise Fatal("could not read bbb config %s: %s" % (bbb_config, e))
    server_url = props.get("bigbluebutton.web.serverURL")
    secret = props.get("securitySalt")
    if not server_url:
        raise Fatal("backend from config: bigbluebutton.web.serverURL property not found in config")
    if not secret:
        raise Fatal("backend from config: securitySalt property not found in config")
    host = server_url + ("" if server_url.endswith("/") else "/") + "bigbluebutton/api/"
    try:
        load_factor = float(os.environ.get("B3SCALE_LOAD_FACTOR") or "1.0")
    except ValueError:
        log("invalid value for B3SCALE_LOAD_FACTOR")
        load_factor = 1.0

    cli = Client(api_url, token)
    try:
        status, info = cli.call("GET", "status")
    except OSError as e:
        raise Fatal("api initialization failed: %s" % e)
    if status != 200:
        raise Fatal("api initialization failed: HTTP %d: %s" % (status, info.get("message")))
    log("connected to b3scaled as agent %s" % info.get("account_ref"))

    status, backend = cli.call("GET", "agent/backend")
    if status == 404:
        backend = None
    elif status != 200:
        raise Fatal("failed to get backend: HTTP %d: %s" % (status, backend.get("message")))
    if backend is None and not register:
        raise Fatal("the backend was not found, consider using the autoregister option -register (or -a)")
    if backend is None:
        status, backend = cli.call("POST", "backends", {
            "id": "", "node_state": "init", "admin_state": "init",
            "agent_heartbeat": "0001-01-01T00:00:00Z", "agent_ref": None, "last_error": None,
            "latency": 0, "meetings_count": 0, "attendees_count": 0, "load_factor": load_factor,
            "bbb": {"host": host, "secret": secret}, "settings": {"tags": None},
        })
        if status != 200:
            raise Fatal("could not register backend: HTTP %d: %s" % (status, backend.get("message")))
        log("registered backend %s" % backend["id"])
    else:
        status, backend = cli.call("PATCH", "backends/" + backend["id"], {
            "backend": {"host": host, "secret": secret}, "load_factor": load_factor})
        if status != 200:
            raise Fatal("could not update backend: HTTP %d: %s" % (status, backend.get("message")))
    log("agent configured for backend %s host %s" % (backend["id"], backend["bbb"]["host"]))
    return cli


def main(argv=None):
    p = argparse.ArgumentParser(description="STAND-IN for b3scale's node agent, for tests (not b3scaleagent).")
    p.add_argument("-register", "-a", dest="register", action="store_true",
                   help="automatically register backend node in cluster")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    print("b3scale node agent\t\tv.standin", flush=True)
    try:
        cli = configure(args.register)
    except Fatal as e:
        log("FATAL: %s" % e)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.is_set():
        try:
            status, body = cli.call("POST", "agent/heartbeat")
            if status != 200:
                log("could not create heartbeat: HTTP %d: %s" % (status, body.get("message")))
        except OSError as e:
            log("could not create heartbeat: %s" % e)
        stop.wait(HEARTBEAT_SECONDS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
