"""Tests for the lab EMULATORS (BBB API, Scalelite, b3scale). Not tests of the real software.

Run: python3 -m unittest discover -s lab/emulators -v
Everything binds 127.0.0.1 with port 0 and stops by itself in a few seconds.
"""

import email.utils
import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
BBB_EMULATOR = os.path.join(HERE, "..", "bbb", "bbb-api-emulator.py")


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bbbemu = load("bbb_api_emulator", BBB_EMULATOR)
scalelite = load("scalelite_emulator", os.path.join(HERE, "scalelite.py"))
b3scale = load("b3scale_emulator", os.path.join(HERE, "b3scale.py"))

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


NO_REDIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())


def http(method, url, body=None, headers=None, opener=NO_PROXY):
    """Return (status, headers, body bytes) without raising on HTTP errors."""
    data = body
    if isinstance(body, (dict, list)):
        data = json.dumps(body).encode()
        headers = dict(headers or {}, **{"Content-Type": "application/json"})
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with opener.open(req, timeout=5) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def serve(server):
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    return "http://127.0.0.1:%d" % server.server_address[1]


def stop(server):
    server.shutdown()
    server.server_close()


def start_bbb(tmp, secret="s3cret", extra="", akka_secret=None, dialplan=None):
    props = os.path.join(tmp, "bbb-web.properties")
    with open(props, "w") as f:
        f.write("securitySalt=%s\nbigbluebutton.web.serverURL=https://node1.lab\n%s" % (secret, extra))
    akka = os.path.join(tmp, "bbb-apps-akka.conf")
    with open(akka, "w") as f:
        # The shape the bbb-apps-akka package's preinst writes.
        f.write('include "/usr/share/bbb-apps-akka/conf/application.conf"\n\nservices {\n'
                '  bbbWebAPI="https://node1.lab/bigbluebutton/api"\n  sharedSecret="%s"\n}\n'
                % (secret if akka_secret is None else akka_secret))
    dialplans = None
    if dialplan is not None:
        dialplans = os.path.join(tmp, "dialplan-public")
        os.makedirs(dialplans, exist_ok=True)
        with open(os.path.join(dialplans, "provider.xml"), "w") as f:
            f.write(dialplan)
    emu = bbbemu.Emulator(lambda: bbbemu.Config(None, props, None, akka, dialplans), end_delay=0.2)
    server = bbbemu.Server(("127.0.0.1", 0), emu, quiet=True)
    return emu, server, serve(server), props


class BBBClient:
    def __init__(self, base, secret):
        self.base, self.secret = base + "/bigbluebutton/api", secret

    def url(self, call, query="", algo="sha1", secret=None):
        cs = bbbemu.sign(call, query, self.secret if secret is None else secret, algo)
        return "%s/%s?%s" % (self.base, call, (query + "&" if query else "") + "checksum=" + cs)

    def xml(self, call, query="", algo="sha1", secret=None):
        status, _, body = http("GET", self.url(call, query, algo, secret))
        assert status == 200, (status, body)
        return ET.fromstring(body)

    def create(self, mid, extra=""):
        return self.xml("create", "name=Room+%s&meetingID=%s%s" % (mid, mid, extra))

    def join(self, mid, name="Ann", role="viewer"):
        return self.xml("join", "meetingID=%s&fullName=%s&role=%s&redirect=false" % (mid, name, role))


# ==========================================================================
# BBB API emulator
# ==========================================================================

class BBBEmulatorTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.emu, self.server, self.base, self.props = start_bbb(
            self.tmp.name, extra="defaultDialAccessNumber=+49-30-1234\n")
        self.c = BBBClient(self.base, "s3cret")

    def tearDown(self):
        stop(self.server)
        self.tmp.cleanup()

    def test_breakout_join_is_signed_with_akkas_secret(self):
        self.c.create("m1")
        status, _, body = http("GET", self.base + "/emulator/breakout-join?meetingID=m1&fullName=Ann")
        self.assertEqual(status, 200, body)
        self.assertTrue(json.loads(body)["joined"])

    def test_breakout_join_fails_when_akkas_secret_differs(self):
        # bbb-conf --setsecret/--setip keep them equal; a node where only securitySalt was
        # changed refuses every breakout join with bbb-web's checksumError, as a real one does.
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        _, server, base, _ = start_bbb(tmp.name, akka_secret="changeme")
        self.addCleanup(stop, server)
        BBBClient(base, "s3cret").create("m1")
        status, _, body = http("GET", base + "/emulator/breakout-join?meetingID=m1&fullName=Ann")
        self.assertEqual(status, 403, body)
        reply = json.loads(body)
        self.assertFalse(reply["joined"])
        self.assertIn("checksumError", urllib.parse.unquote(reply["location"]))

    def test_akka_shared_secret_parsing(self):
        parse = bbbemu.parse_akka_shared_secret
        self.assertEqual(parse('services {\n  sharedSecret="a"\n}\n'), "a")
        self.assertEqual(parse('services {\n  sharedSecret = "a"\n}\nservices.sharedSecret="b"\n'), "b")
        self.assertIsNone(parse("services {\n  bbbWebAPI=\"x\"\n}\n"))

    def test_index_needs_no_checksum(self):
        status, headers, body = http("GET", self.base + "/bigbluebutton/api")
        root = ET.fromstring(body)
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/xml"))
        self.assertEqual(root.findtext("returncode"), "SUCCESS")
        self.assertEqual(root.findtext("version"), "2.0")
        self.assertEqual(root.findtext("apiVersion"), "2.0")
        self.assertEqual(root.findtext("bbbVersion"), "")  # <bbbVersion/>: not revealed by default

    def test_checksum_algorithms_by_length(self):
        for algo in ("sha1", "sha256", "sha384", "sha512"):
            with self.subTest(algo=algo):
                root = self.c.xml("getMeetings", "", algo)
                self.assertEqual(root.findtext("returncode"), "SUCCESS")

    def test_wrong_and_missing_checksum(self):
        for url in (self.c.url("getMeetings", secret="wrong"),
                    self.c.url("getMeetings", "a=1", secret="wrong"),
                    self.base + "/bigbluebutton/api/getMeetings",
                    self.base + "/bigbluebutton/api/getMeetings?checksum=abc"):
            with self.subTest(url=url):
                _, _, body = http("GET", url)
                root = ET.fromstring(body)
                self.assertEqual(root.findtext("returncode"), "FAILED")
                self.assertEqual(root.findtext("messageKey"), "checksumError")
                self.assertEqual(root.findtext("message"), "Checksums do not match")

    def test_checksum_covers_query_as_sent_and_strips_checksum_anywhere(self):
        q = "meetingID=a%20b&name=x+y"
        cs = bbbemu.sign("create", q, "s3cret")
        # checksum first in the query string: bbb-web strips "checksum=X&"
        _, _, body = http("GET", "%s/bigbluebutton/api/create?checksum=%s&%s" % (self.base, cs, q))
        self.assertEqual(ET.fromstring(body).findtext("returncode"), "SUCCESS")
        # re-encoding the same parameters differently breaks the checksum
        _, _, body = http("GET", "%s/bigbluebutton/api/create?meetingID=a+b&name=x+y&checksum=%s" % (self.base, cs))
        self.assertEqual(ET.fromstring(body).findtext("messageKey"), "checksumError")

    def test_supported_algorithms_are_honoured_and_reloaded(self):
        with open(self.props, "a") as f:
            f.write("supportedChecksumAlgorithms=sha256\n")
        self.emu.reload()  # what SIGHUP does
        self.assertEqual(self.c.xml("getMeetings", "", "sha1").findtext("messageKey"), "checksumError")
        self.assertEqual(self.c.xml("getMeetings", "", "sha256").findtext("returncode"), "SUCCESS")

    def test_post_checksum_uses_url_query_only(self):
        cs = bbbemu.sign("create", "", "s3cret")
        status, _, body = http("POST", self.base + "/bigbluebutton/api/create?checksum=" + cs,
                               b"meetingID=posted&name=Posted", {"Content-Type": "application/x-www-form-urlencoded"})
        root = ET.fromstring(body)
        self.assertEqual(root.findtext("returncode"), "SUCCESS", body)
        self.assertEqual(root.findtext("meetingID"), "posted")

    def test_create_join_leave_end_lifecycle(self):
        empty = self.c.xml("getMeetings")
        self.assertEqual(empty.findtext("messageKey"), "noMeetings")
        self.assertEqual(empty.findtext("message"), "no meetings were found on this server")
        self.assertIsNotNone(empty.find("meetings"))

        created = self.c.create("m1", "&attendeePW=ap&moderatorPW=mp")
        self.assertEqual(created.findtext("returncode"), "SUCCESS")
        self.assertEqual([e.tag for e in created][:4], ["returncode", "meetingID", "internalMeetingID", "parentMeetingID"])
        self.assertEqual(created.findtext("dialNumber"), "+49-30-1234")
        self.assertEqual(len(created.findtext("voiceBridge")), 5)
        self.assertEqual(created.findtext("hasBeenForciblyEnded"), "false")
        self.assertEqual(self.c.xml("isMeetingRunning", "meetingID=m1").findtext("running"), "false")

        dup = self.c.create("m1", "&attendeePW=ap&moderatorPW=mp")
        self.assertEqual(dup.findtext("messageKey"), "duplicateWarning")
        self.assertEqual(self.c.create("m1", "&attendeePW=zz&moderatorPW=mp").findtext("messageKey"), "idNotUnique")

        self.assertEqual(self.c.join("m1", "Mod", "moderator").findtext("messageKey"), "successfullyJoined")
        self.c.xml("join", "meetingID=m1&fullName=Viewer&password=ap&redirect=false")
        info = self.c.xml("getMeetingInfo", "meetingID=m1")
        self.assertEqual(info.findtext("participantCount"), "2")
        self.assertEqual(info.findtext("moderatorCount"), "1")
        self.assertEqual(info.findtext("running"), "true")
        meeting = self.c.xml("getMeetings").find("meetings/meeting")
        self.assertEqual(meeting.findtext("meetingID"), "m1")
        self.assertEqual(len(meeting.findall("attendees/attendee")), 2)
        for tag in ("meetingName", "internalMeetingID", "createTime", "voiceBridge", "dialNumber", "running",
                    "participantCount", "listenerCount", "voiceParticipantCount", "videoCount", "moderatorCount",
                    "isBreakout"):
            self.assertIsNotNone(meeting.find(tag), tag)

        status, _, body = http("GET", self.base + "/emulator/leave?meetingID=m1")
        self.assertEqual((status, json.loads(body)["participantCount"]), (200, 1))

        end = self.c.xml("end", "meetingID=m1")
        self.assertEqual(end.findtext("messageKey"), "sentEndMeetingRequest")
        self.assertEqual(self.c.xml("getMeetingInfo", "meetingID=m1").findtext("hasBeenForciblyEnded"), "true")
        time.sleep(0.3)  # end is asynchronous
        gone = self.c.xml("getMeetingInfo", "meetingID=m1")
        self.assertEqual((gone.findtext("returncode"), gone.findtext("messageKey")), ("FAILED", "notFound"))
        self.assertEqual(self.c.xml("getMeetings").findtext("messageKey"), "noMeetings")

    def test_bbb_web_restart_hides_running_meetings_that_go_on(self):
        # --state is what akka-apps holds; a new Emulator on it is a restarted bbb-web.
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        state = os.path.join(tmp.name, "akka.json")
        config = lambda: bbbemu.Config(None, self.props, None)
        first = bbbemu.Emulator(config, state_file=state)
        server = bbbemu.Server(("127.0.0.1", 0), first, quiet=True)
        c = BBBClient(serve(server), "s3cret")
        c.create("m1")
        c.join("m1", "Ann")
        c.join("m1", "Bob")
        old_id = c.xml("getMeetingInfo", "meetingID=m1").findtext("internalMeetingID")
        stop(server)
        # bbb-web restarts: the class goes on, the API knows nothing of it.
        second = bbbemu.Emulator(config, state_file=state)
        server = bbbemu.Server(("127.0.0.1", 0), second, quiet=True)
        base = serve(server)
        self.addCleanup(stop, server)
        c = BBBClient(base, "s3cret")
        self.assertEqual(c.xml("getMeetings").findtext("messageKey"), "noMeetings")
        self.assertEqual(c.xml("getMeetingInfo", "meetingID=m1").findtext("messageKey"), "notFound")
        self.assertEqual(c.xml("isMeetingRunning", "meetingID=m1").findtext("running"), "false")
        self.assertEqual(c.xml("end", "meetingID=m1").findtext("messageKey"), "notFound")
        shown = json.loads(http("GET", base + "/emulator/state")[2])["meetings"]
        self.assertEqual([(m["meetingID"], m["participantCount"], m["forgottenByBbbWeb"]) for m in shown],
                         [("m1", 2, True)])
        # A create with the same ID makes a second meeting; the forgotten one stays hidden.
        self.assertNotEqual(c.create("m1").findtext("internalMeetingID"), old_id)
        listed = c.xml("getMeetings").findall("meetings/meeting")
        self.assertEqual([m.findtext("participantCount") for m in listed], ["0"])
        # Its participants leave; akka-apps ends it.
        for _ in range(2):
            self.assertEqual(http("GET", base + "/emulator/leave?meetingID=m1")[0], 200)
        shown = json.loads(http("GET", base + "/emulator/state")[2])["meetings"]
        self.assertEqual([m["forgottenByBbbWeb"] for m in shown], [False])
        with open(state) as f:
            self.assertEqual(len(json.load(f)["meetings"]), 1)

    def test_join_redirects_like_bbb_web(self):
        self.c.create("r1")
        status, headers, _ = http("GET", self.c.url("join", "meetingID=r1&fullName=Bob&role=viewer"),
                                  opener=NO_REDIRECT)
        self.assertEqual(status, 302)
        self.assertTrue(headers["Location"].startswith("https://node1.lab/html5client/join?sessionToken="))
        self.assertEqual(self.c.xml("getMeetingInfo", "meetingID=r1").findtext("participantCount"), "1")
        status, headers, _ = http("GET", self.c.url("join", "meetingID=r1&fullName=Bob&role=viewer", secret="x"),
                                  opener=NO_REDIRECT)
        self.assertEqual(status, 302)
        self.assertIn("checksumError", urllib.parse.unquote(headers["Location"]))

    def test_missing_parameters(self):
        self.assertEqual(self.c.xml("create", "name=x").findtext("messageKey"), "missingParamMeetingID")
        self.assertEqual(self.c.xml("end", "meetingID=nope").findtext("messageKey"), "notFound")

    def test_cli_serves_and_stops_on_sigterm(self):
        proc = subprocess.Popen([sys.executable, BBB_EMULATOR, "--listen", "127.0.0.1:0", "--properties", self.props,
                                 "--defaults", "/nonexistent", "--release-file", "/nonexistent", "--quiet"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            port = int(line.split()[3].rsplit(":", 1)[1])
            root = BBBClient("http://127.0.0.1:%d" % port, "s3cret").xml("getMeetings")
            self.assertEqual(root.findtext("returncode"), "SUCCESS")
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=5), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()


# ==========================================================================
# Scalelite emulator
# ==========================================================================

SL_SECRET = "lbsecret"


class WebhooksStandinTest(unittest.TestCase):
    """The bbb-webhooks stand-in (--webhooks): configuration as node-config reads it for
    bbb-webhooks 3.x, checksums as its src/out/webhooks/utils.js checks them."""

    def start(self, packaged, override=None, env=None):
        self.tmp = tempfile.TemporaryDirectory()
        etc, pkg = os.path.join(self.tmp.name, "etc"), os.path.join(self.tmp.name, "config")
        os.makedirs(etc)
        os.makedirs(pkg)
        with open(os.path.join(pkg, "default.yml"), "w") as f:
            f.write(packaged)
        if override is not None:
            with open(os.path.join(etc, "production.yml"), "w") as f:
                f.write(override)
        cfg = bbbemu.WebhooksConfig([etc + "/", pkg + "/"], "production", env or {})
        self.server = bbbemu.Server(("127.0.0.1", 0), bbbemu.Webhooks(cfg), quiet=True)
        self.base = serve(self.server) + "/bigbluebutton/api/"
        return cfg

    def tearDown(self):
        stop(self.server)
        self.tmp.cleanup()

    def call(self, method, query, secret, algo="sha256"):
        cs = bbbemu.sign(method, query, secret, algo)
        return http("GET", self.base + method + "?" + (query + "&" if query else "") + "checksum=" + cs)

    PACKAGED = "bbb:\n  serverDomain: node1.lab\n  sharedSecret: pkg-secret\n  auth2_0: false\n"

    def test_hooks_need_the_configured_secret(self):
        self.start(self.PACKAGED)
        status, _, body = self.call("hooks/create", "callbackURL=http%3A%2F%2Fcb.lab%2Fx", "pkg-secret")
        self.assertEqual(status, 200)
        self.assertIn(b"<returncode>SUCCESS</returncode><hookID>1</hookID>", body)
        _, _, body = self.call("hooks/list", "", "pkg-secret", "sha1")
        self.assertIn(b"<callbackURL><![CDATA[http://cb.lab/x]]></callbackURL>", body)
        for method in ("hooks/create", "hooks/list", "hooks/destroy"):
            _, _, body = self.call(method, "callbackURL=x&hookID=1", "another-secret")
            self.assertIn(b"<messageKey>checksumError</messageKey>", body, method)
        # Upper-case hex is not the hex it computes (an exact comparison, as the real one's).
        cs = bbbemu.sign("hooks/list", "", "pkg-secret", "sha256").upper()
        _, _, body = http("GET", self.base + "hooks/list?checksum=" + cs)
        self.assertIn(b"checksumError", body)
        status, _, _ = http("GET", self.base + "hooks/list?checksum=abc")
        self.assertEqual(status, 500, "a length of no algorithm makes the real one throw")
        status, _, body = http("GET", self.base + "hooks/ping")
        self.assertEqual(status, 200)

    def test_the_override_and_the_environment_win(self):
        cfg = self.start(self.PACKAGED, override="bbb:\n  sharedSecret: \"etc-secret\" # rollout\n")
        self.assertEqual(cfg.secret, "etc-secret")
        _, _, body = self.call("hooks/list", "", "pkg-secret")
        self.assertIn(b"checksumError", body)
        _, _, body = self.call("hooks/list", "", "etc-secret")
        self.assertIn(b"<returncode>SUCCESS</returncode>", body)
        stop(self.server)
        self.tmp.cleanup()
        cfg = self.start(self.PACKAGED, env={"SHARED_SECRET": "env-secret"})
        self.assertEqual(cfg.secret, "env-secret")

    def test_checksum_query_as_utils_js_strips_it(self):
        self.assertEqual(bbbemu.webhooks_query("/a/hooks/list?x=1&checksum=c&y=2"), "x=1&y=2")
        self.assertEqual(bbbemu.webhooks_query("/a/hooks/list?checksum=c&y=2"), "y=2")
        self.assertEqual(bbbemu.webhooks_query("/a/hooks/list?checksum=c"), "")
        self.start(self.PACKAGED)


class ScaleliteTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.bbb_emu, self.bbb_server, self.bbb_base, _ = start_bbb(self.tmp.name)
        self.bbb = BBBClient(self.bbb_base, "s3cret")
        self.start_scalelite({"LOADBALANCER_SECRET": SL_SECRET})

    def start_scalelite(self, env, state=None):
        self.state = state or os.path.join(self.tmp.name, "scalelite.json")
        self.app = scalelite.Scalelite(scalelite.Settings(env), state_file=self.state, poll_interval=3600)
        self.server = scalelite.Server(("127.0.0.1", 0), self.app, quiet=True)
        self.base = serve(self.server)

    def tearDown(self):
        self.app.stop()
        stop(self.server)
        stop(self.bbb_server)
        self.tmp.cleanup()

    def call(self, action, body=None, query="", algo="sha1", secret=SL_SECRET):
        cs = hashlib.new(algo, (action + query + secret).encode()).hexdigest()
        url = "%s/scalelite/api/%s?%s" % (self.base, action, (query + "&" if query else "") + "checksum=" + cs)
        status, headers, raw = http("POST" if body is not None else "GET", url, body)
        if headers["Content-Type"].startswith("application/json"):
            return status, json.loads(raw)
        return status, ET.fromstring(raw)

    def add(self, url=None, **extra):
        status, server = self.call("addServer", {"server": dict(url=url or self.bbb_base + "/bigbluebutton/api",
                                                                secret="s3cret", **extra)})
        self.assertEqual(status, 201, server)
        return server

    def state_of(self, sid):
        return self.call("getServerInfo", query="id=" + sid)[1]

    def test_checksums_and_content_type(self):
        self.assertEqual(self.call("getServers"), (404, {"error": "No servers are configured"}))
        self.assertEqual(self.call("getServers", algo="sha256")[0], 404)
        self.assertEqual(self.call("getServers", algo="sha512")[0], 404)
        for kwargs in ({"secret": "wrong"}, {"algo": "sha384"}):
            status, root = self.call("getServers", **kwargs)
            self.assertEqual(status, 200)
            self.assertEqual(root.findtext("returncode"), "FAILED")
            self.assertEqual(root.findtext("messageKey"), "checksumError")
        cs = hashlib.sha1(("addServer" + SL_SECRET).encode()).hexdigest()
        status, _, raw = http("POST", self.base + "/scalelite/api/addServer?checksum=" + cs, b"server[url]=x",
                              {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(ET.fromstring(raw).findtext("messageKey"), "unsupportedContentType")
        status, _, raw = http("GET", self.base + "/scalelite/api/addServer")
        self.assertEqual(ET.fromstring(raw).findtext("messageKey"), "unsupportedRequest")

    def test_server_lifecycle_through_the_poller(self):
        server = self.add(load_multiplier=2)
        self.assertEqual((server["state"], server["online"], server["load"], server["load_multiplier"]),
                         ("disabled", "offline", "unavailable", "2.0"))
        sid = server["id"]
        self.assertEqual(self.call("updateServer", {"id": sid, "server": {"state": "enable"}})[1]["state"], "enabled")
        self.app.poll_once()
        info = self.state_of(sid)
        self.assertEqual((info["online"], info["load"]), ("online", 0.0))

        self.bbb.create("busy")
        self.bbb.join("busy", "Mod", "moderator")
        self.bbb.join("busy", "Viewer", "viewer")
        self.app.settings.load_min_user_count = 0
        self.app.poll_once()
        # participantCount + moderatorCount, times the multiplier (poll.rake)
        self.assertEqual(self.state_of(sid)["load"], 6.0)

        self.assertEqual(self.call("updateServer", {"id": sid, "server": {"state": "cordon"}})[1]["state"], "cordoned")
        self.app.poll_once()
        self.assertEqual(self.state_of(sid)["state"], "cordoned")  # still loaded: keeps running
        http("GET", self.bbb_base + "/emulator/leave?meetingID=busy")
        http("GET", self.bbb_base + "/emulator/leave?meetingID=busy")
        self.app.poll_once()
        info = self.state_of(sid)
        self.assertEqual((info["state"], info["load"]), ("disabled", "unavailable"))
        status, history = http("GET", self.base + "/emulator/history")[0::2]
        states = [(h["event"], h["state"], h["online"]) for h in json.loads(history)]
        self.assertEqual(states, [("add", "disabled", False), ("update", "enabled", False),
                                  ("poll", "enabled", True), ("update", "cordoned", True),
                                  ("poll", "disabled", True)])

    def front_create(self, mid, base=None):
        query = "name=Class+%s&meetingID=%s&voiceBridge=12345" % (mid, mid)
        cs = hashlib.sha256(("create" + query + SL_SECRET).encode()).hexdigest()
        status, _, raw = http("GET", "%s/bigbluebutton/api/create?%s&checksum=%s" % (base or self.base, query, cs))
        self.assertEqual(status, 200, raw)
        return ET.fromstring(raw)

    def enabled_node(self, bbb_base):
        sid = self.call("addServer", {"server": {"url": bbb_base + "/bigbluebutton/api", "secret": "s3cret"}})[1]["id"]
        self.call("updateServer", {"id": sid, "server": {"state": "enable"}})
        self.app.poll_once()

    def test_front_create_hands_out_voice_bridge_len_digits(self):
        self.assertEqual(self.front_create("none").findtext("messageKey"), "noAvailableServers")
        self.enabled_node(self.bbb_base)
        created = self.front_create("c1")
        self.assertEqual(created.findtext("returncode"), "SUCCESS")
        bridge = created.findtext("voiceBridge")
        # Scalelite v1.8.5's default VOICE_BRIDGE_LEN (config/application.rb), not the given 12345.
        self.assertEqual(len(bridge), 9)
        self.assertNotEqual(bridge[0], "0")
        self.app.stop()
        stop(self.server)
        self.start_scalelite({"LOADBALANCER_SECRET": SL_SECRET, "VOICE_BRIDGE_LEN": "6"},
                             state=os.path.join(self.tmp.name, "sl6.json"))
        self.enabled_node(self.bbb_base)
        self.assertEqual(len(self.front_create("c2").findtext("voiceBridge")), 6)

    def test_node_refuses_voice_bridges_its_dialplan_cannot_read(self):
        # The dialplan rollout rendered before issue 10: 5-digit PINs. Behind Scalelite's 9-digit
        # voice bridges no caller could ever join, and the stand-in says so.
        old = ('<include><extension name="from_p"><condition field="destination_number" expression="^49">'
               '<action application="play_and_get_digits" data="5 5 3 30000 # conference/conf-pin.wav '
               'ivr/ivr-that_was_an_invalid_entry.wav pin \\d+"/></condition></extension></include>\n')
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        _, server, base, _ = start_bbb(tmp.name, dialplan=old)
        self.addCleanup(stop, server)
        self.enabled_node(base)
        refused = self.front_create("c1")
        self.assertEqual(refused.findtext("messageKey"), "emulatorVoiceBridgeNotDialable", ET.tostring(refused))
        # The dialplan rollout renders now (tests/golden): 9 digits, as Scalelite hands out.
        golden = os.path.join(HERE, "..", "..", "tests", "golden", "freeswitch-dialplan.xml.expected")
        tmp9 = tempfile.TemporaryDirectory()
        self.addCleanup(tmp9.cleanup)
        with open(golden) as f:
            _, server9, base9, _ = start_bbb(tmp9.name, dialplan=f.read())
        self.addCleanup(stop, server9)
        self.app.stop()
        stop(self.server)
        self.start_scalelite({"LOADBALANCER_SECRET": SL_SECRET}, state=os.path.join(tmp9.name, "sl.json"))
        self.enabled_node(base9)
        self.assertEqual(self.front_create("c2").findtext("returncode"), "SUCCESS")

    def test_poller_thread_runs_by_itself(self):
        sid = self.add()["id"]
        self.call("updateServer", {"id": sid, "server": {"state": "enable"}})
        self.app.poll_interval = 0.05
        self.app.start()
        deadline = time.time() + 3
        while time.time() < deadline and self.state_of(sid)["online"] != "online":
            time.sleep(0.05)
        self.assertEqual(self.state_of(sid)["online"], "online")

    def test_disable_with_load_is_flagged(self):
        sid = self.add()["id"]
        self.call("updateServer", {"id": sid, "server": {"state": "enable"}})
        self.bbb.create("live")
        self.bbb.join("live")
        self.app.poll_once()
        self.call("updateServer", {"id": sid, "server": {"state": "disable"}})
        history = json.loads(http("GET", self.base + "/emulator/history")[2])
        self.assertTrue(history[-1].get("disabled_with_load"))
        # the real API does not end the meetings
        self.assertEqual(self.bbb.xml("isMeetingRunning", "meetingID=live").findtext("running"), "true")

    def test_unhealthy_server_goes_offline_after_two_failures(self):
        sid = self.add()["id"]
        self.app.poll_once()
        self.assertEqual(self.state_of(sid)["online"], "online")
        stop(self.bbb_server)
        self.app.poll_once()
        self.assertEqual(self.state_of(sid)["online"], "online")
        self.app.poll_once()
        self.assertEqual(self.state_of(sid)["online"], "offline")

    def test_offline_server_has_its_meetings_cleared_and_ended(self):
        # poll.rake: after SERVER_UNHEALTHY_THRESHOLD (2) failed polls the server goes offline,
        # Scalelite forgets the meetings it created there and sends `end` for each.
        self.enabled_node(self.bbb_base)
        self.assertEqual(self.front_create("c1").findtext("returncode"), "SUCCESS")
        self.assertIn("c1", self.app.meetings)
        # The poller's getMeetings fails (bbb-web restarting behind nginx); `end` still reaches it.
        broken = scalelite.BBBError
        real_get = scalelite.bbb_get

        def failing_get(url, timeout):
            if "/getMeetings?" in url:
                raise broken("internalError: down")
            return real_get(url, timeout)
        scalelite.bbb_get = failing_get
        self.addCleanup(setattr, scalelite, "bbb_get", real_get)
        self.app.poll_once()
        self.assertIn("c1", self.app.meetings)  # one failure: still online
        self.app.poll_once()
        self.assertNotIn("c1", self.app.meetings)
        sid = self.call("getServers")[1][0]["id"]
        self.assertEqual(self.state_of(sid)["online"], "offline")
        history = json.loads(http("GET", self.base + "/emulator/history")[2])
        self.assertEqual(history[-1].get("meetings_ended"), 1, history[-1])
        info = self.bbb.xml("getMeetingInfo", "meetingID=c1")
        self.assertEqual(info.findtext("hasBeenForciblyEnded"), "true", ET.tostring(info))

    def test_errors_as_the_controller_returns_them(self):
        self.assertEqual(self.call("getServerInfo", query="id=nope"),
                         (404, {"error": "Couldn't find server with id=nope"}))
        sid = self.add()["id"]
        self.assertEqual(self.call("updateServer", {"id": sid, "server": {"state": "off"}}),
                         (400, {"error": "Invalid state parameter: off"}))
        self.assertEqual(self.call("updateServer", {"id": sid, "server": {"load_multiplier": 0}}),
                         (400, {"error": "Load-multiplier must be a non-zero number"}))
        self.assertEqual(self.call("addServer", {"server": {"url": "http://x/bigbluebutton/api"}}),
                         (400, {"error": "Server needs a URL and a secret"}))
        self.assertEqual(self.call("deleteServer", {"id": sid}),
                         (200, {"success": "Server id=%s was destroyed" % sid}))
        self.assertEqual(self.call("getTenants"), (412, {"message": "Multitenancy is disabled"}))

    def test_unwrapped_body_and_hostname_ids_and_persistence(self):
        self.app.settings.id_is_hostname = True
        status, server = self.call("addServer", {"url": "http://Node7.Lab/bigbluebutton/api", "secret": "x"})
        self.assertEqual((status, server["id"]), (201, "node7.lab"))
        self.assertEqual(self.call("addServer", {"url": "http://node7.lab/bigbluebutton/api", "secret": "y"})[0], 500)
        stop(self.server)
        self.start_scalelite({"LOADBALANCER_SECRET": SL_SECRET}, state=self.state)
        self.assertEqual([s["id"] for s in self.call("getServers")[1]], ["node7.lab"])

    def test_hostname_ids_as_server_save_makes_them(self):
        # app/models/server.rb v1.8.5: URI.parse(url).host.downcase(:ascii)
        self.app.settings.id_is_hostname = True
        for url, sid in [("https://BBB1.Example.org:8443/bigbluebutton/api", "bbb1.example.org"),
                         ("http://u:p@127.0.0.11:18001/bigbluebutton/api", "127.0.0.11"),
                         ("http://[FD00::5]:8443/bigbluebutton/api", "[fd00::5]")]:
            status, server = self.call("addServer", {"url": url, "secret": "x"})
            self.assertEqual((status, server["id"], server["url"]), (201, sid, url))
        # Another port or path on a host that has a server: the same id, refused.
        for url in ["https://bbb1.example.org/bigbluebutton/api", "http://127.0.0.11:18002/bigbluebutton/api",
                    "no-scheme/bigbluebutton/api"]:
            status, page = self.call("addServer", {"url": url, "secret": "x"})
            self.assertEqual((status, page.tag), (500, "html"), url)
        self.assertEqual(len(self.call("getServers")[1]), 3)

    def test_hostname_ids_setting_is_read_as_rails_does(self):
        for value, on in [("true", True), ("TRUE", True), ("false", False), (" true", False), ("1", False)]:
            self.assertEqual(scalelite.Settings({"SERVER_ID_IS_HOSTNAME": value}).id_is_hostname, on, value)

    def test_panic_ends_meetings_and_disables(self):
        sid = self.add()["id"]
        self.call("updateServer", {"id": sid, "server": {"state": "enable"}})
        self.bbb.create("p1")
        status, body = self.call("panicServer", {"id": sid})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.state_of(sid)["state"], "disabled")
        self.assertEqual(self.bbb.xml("getMeetingInfo", "meetingID=p1").findtext("hasBeenForciblyEnded"), "true")

    def test_cli_stops_on_sigterm(self):
        env = dict(os.environ, LOADBALANCER_SECRET=SL_SECRET)
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "scalelite.py"), "--listen", "127.0.0.1:0",
                                 "--poll-interval", "0.1", "--quiet"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            port = int(proc.stdout.readline().split()[3].rsplit(":", 1)[1])
            self.base = "http://127.0.0.1:%d" % port
            self.assertEqual(self.call("getServers")[0], 404)
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=5), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()


# ==========================================================================
# b3scale emulator
# ==========================================================================

JWT_SECRET = "jwtsecret"


class B3scaleTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.bbb_emu, self.bbb_server, self.bbb_base, _ = start_bbb(self.tmp.name)
        self.bbb = BBBClient(self.bbb_base, "s3cret")
        self.app = b3scale.B3scale(JWT_SECRET, state_file=os.path.join(self.tmp.name, "b3.json"),
                                   poll_interval=3600, request_timeout=2)
        self.server = b3scale.Server(("127.0.0.1", 0), self.app, quiet=True)
        self.base = serve(self.server)
        self.admin = b3scale.mint_token(JWT_SECRET, "admin", ["b3scale", "b3scale:admin"], ttl=300)
        # b3scaled does not migrate its database by itself: `b3scalectl db migrate` does.
        self.assertEqual(self.api("POST", "/ctrl/migrate")[1]["migrated"], True)

    def tearDown(self):
        self.app.stop()
        stop(self.server)
        stop(self.bbb_server)
        self.tmp.cleanup()

    def api(self, method, path, body=None, token=None, raw_auth=None):
        headers = {"Authorization": raw_auth if raw_auth is not None else "Bearer " + (token or self.admin)}
        status, _, raw = http(method, self.base + "/api/v1" + path, body, headers)
        return status, json.loads(raw)

    def create(self, host=None, token=None, **extra):
        body = dict(bbb={"host": host or self.bbb_base + "/bigbluebutton/api/", "secret": "s3cret"}, **extra)
        status, backend = self.api("POST", "/backends", body, token)
        self.assertEqual(status, 200, backend)
        return backend

    def test_jwt_validation(self):
        self.assertEqual(self.api("GET", "/backends", raw_auth=""), (401, {"message": "missing or malformed jwt"}))
        bad = [b3scale.mint_token("other-secret", "admin", ["b3scale:admin"]),
               b3scale.mint_token(JWT_SECRET, "admin", ["b3scale:admin"], ttl=1, now=time.time() - 10),
               self.admin[:-2] + ("AA" if not self.admin.endswith("AA") else "BB")]
        # an HS256 token with the right secret is refused too (echo-jwt is configured for HS384)
        import base64, hmac
        head = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
        claims = base64.urlsafe_b64encode(b'{"sub":"admin","scope":"b3scale:admin"}').rstrip(b"=").decode()
        sig = base64.urlsafe_b64encode(hmac.new(JWT_SECRET.encode(), (head + "." + claims).encode(),
                                                hashlib.sha256).digest()).rstrip(b"=").decode()
        bad.append(head + "." + claims + "." + sig)
        for token in bad:
            with self.subTest(token=token[:20]):
                self.assertEqual(self.api("GET", "/backends", token=token),
                                 (401, {"message": "invalid or expired jwt"}))

    def test_a_skewed_clock_as_golang_jwt_reads_it(self):
        # golang-jwt v5's default validator: exp checked with no leeway, iat not at all.
        now = time.time()
        fresh = b3scale.mint_token(JWT_SECRET, "admin", ["b3scale:admin"], ttl=300, now=now)
        for offset, status in [(0, 200), (-3600, 200), (290, 200), (301, 401), (3600, 401)]:
            with self.subTest(offset=offset):
                self.app.clock_offset = offset
                code, headers, _ = http("GET", self.base + "/api/v1/backends", None,
                                        {"Authorization": "Bearer " + fresh})
                self.assertEqual(code, status)
                date = email.utils.parsedate_to_datetime(headers["Date"]).timestamp()
                self.assertAlmostEqual(date, now + offset, delta=3)

    def test_scopes(self):
        node = b3scale.mint_token(JWT_SECRET, "node1", ["b3scale:node"])
        self.assertEqual(self.api("GET", "/backends", token=node), (403, {"message": "b3scale:admin scope required"}))
        user = b3scale.mint_token(JWT_SECRET, "u", ["b3scale"])
        self.assertEqual(self.api("POST", "/backends", {}, token=user),
                         (403, {"message": "b3scale:admin, b3scale:node scope required"}))
        status, info = self.api("GET", "/status", token=user)
        self.assertEqual((status, info["account_ref"], info["is_admin"]), (200, "u", False))

    def test_backend_lifecycle(self):
        self.assertEqual(self.api("GET", "/backends"), (200, []))
        backend = self.create(settings={"tags": ["lab"]})
        self.assertEqual(list(backend), ["id", "node_state", "admin_state", "agent_heartbeat", "agent_ref",
                                         "last_error", "latency", "meetings_count", "attendees_count", "load_factor",
                                         "bbb", "settings", "created_at", "updated_at", "synced_at"])
        self.assertEqual((backend["admin_state"], backend["node_state"], backend["load_factor"]), ("ready", "init", 1))
        bid = backend["id"]
        self.bbb.create("mtg")
        self.bbb.join("mtg")
        self.bbb.join("mtg", "Bo")
        self.app.poll_once()
        status, got = self.api("GET", "/backends/" + bid)
        self.assertEqual((got["node_state"], got["meetings_count"], got["attendees_count"], got["last_error"]),
                         ("ready", 1, 2, None))
        self.assertEqual(self.api("GET", "/backends?host=" + urllib.parse.quote(got["bbb"]["host"]))[1][0]["id"], bid)
        self.assertEqual(self.api("GET", "/backends?host=http://other/")[1], [])

        status, patched = self.api("PATCH", "/backends/" + bid, {"admin_state": "stopped"})
        self.assertEqual((status, patched["admin_state"], patched["bbb"]["secret"]), (200, "stopped", "s3cret"))
        status, gone = self.api("DELETE", "/backends/" + bid)
        self.assertEqual(gone["admin_state"], "decommissioned")
        self.app.poll_once()
        self.assertEqual(self.api("GET", "/backends/" + bid)[0], 200)  # a meeting is still running
        self.bbb.xml("end", "meetingID=mtg")
        time.sleep(0.3)
        self.app.poll_once()
        self.assertEqual(self.api("GET", "/backends/" + bid), (404, {"message": "Not Found"}))
        events = [(h["event"], h["admin_state"]) for h in json.loads(http("GET", self.base + "/emulator/history")[2])]
        self.assertEqual(events[0], ("create", "ready"))
        self.assertEqual(events[-1], ("decommissioned-removed", "decommissioned"))

    def test_force_delete_validation_and_unreachable_node(self):
        status, err = self.api("POST", "/backends", {"bbb": {"host": "node", "secret": " "}})
        self.assertEqual(status, 400)
        self.assertEqual(err["fields"], {"bbb.host": ["should start with http(s)://"],
                                         "bbb.secret": ["this field is required"]})
        backend = self.create(host="http://127.0.0.1:9/bigbluebutton/api/")
        self.assertEqual(self.api("POST", "/backends", {"bbb": {"host": backend["bbb"]["host"], "secret": "x"}})[0], 500)
        self.app.poll_once()
        got = self.api("GET", "/backends/" + backend["id"])[1]
        self.assertEqual(got["node_state"], "error")
        self.assertIn("getMeetings", got["last_error"])
        status, gone = self.api("DELETE", "/backends/%s?force=true" % backend["id"])
        self.assertEqual((status, gone["admin_state"]), (200, "destroyed"))
        self.assertEqual(self.api("GET", "/backends/not-a-uuid")[0], 500)

    def test_node_scope_owns_its_backend(self):
        node = b3scale.mint_token(JWT_SECRET, "node-a", ["b3scale:node"])
        mine = self.create(token=node)
        self.assertEqual(mine["agent_ref"], "node-a")
        other = self.create(host="http://127.0.0.1:9/bigbluebutton/api/")
        self.assertEqual(self.api("GET", "/backends/" + mine["id"], token=node)[0], 200)
        self.assertEqual(self.api("GET", "/backends/" + other["id"], token=node)[0], 404)
        self.assertEqual(self.api("DELETE", "/backends/" + mine["id"], token=node)[0], 403)

    def test_answers_as_before_migration_until_migrated(self):
        fresh = b3scale.B3scale(JWT_SECRET, poll_interval=3600)
        server = b3scale.Server(("127.0.0.1", 0), fresh, quiet=True)
        base, self.base = self.base, serve(server)
        try:
            status, info = self.api("GET", "/status")
            self.assertEqual(info["database"], {"available": True, "database": "b3scale", "migrated": False,
                                                "migration": None, "pending_migrations": 2, "error": None})
            self.assertEqual(self.api("GET", "/backends"), (500, {"message": "Internal Server Error"}))
            node = b3scale.mint_token(JWT_SECRET, "n1", ["b3scale:node"])
            self.assertEqual(self.api("POST", "/agent/heartbeat", token=node)[0], 500)
            self.assertEqual(self.api("POST", "/ctrl/migrate", token=node)[0], 403)
            status, migrated = self.api("POST", "/ctrl/migrate")
            self.assertEqual((status, migrated["migrated"], migrated["pending_migrations"]), (200, True, 0))
            self.assertEqual(self.api("GET", "/backends"), (200, []))
        finally:
            self.base = base
            stop(server)

    def test_agent_registers_its_backend_and_heartbeats_keep_it_routable(self):
        props = os.path.join(self.tmp.name, "agent.properties")
        with open(props, "w") as f:
            f.write("securitySalt=s3cret\nbigbluebutton.web.serverURL=%s\n" % self.bbb_base)
        token = b3scale.mint_token(JWT_SECRET, "bbb01", ["b3scale:node"])
        env = dict(os.environ, B3SCALE_API_URL=self.base, B3SCALE_API_ACCESS_TOKEN=token, BBB_CONFIG=props,
                   B3SCALE_LOAD_FACTOR="2.0")
        script = os.path.join(HERE, "b3scaleagent.py")
        # Without -a an agent whose ref has no backend gives up, as the real one does.
        lone = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=10)
        self.assertEqual(lone.returncode, 1)
        self.assertIn("consider using the autoregister option", lone.stderr)
        proc = subprocess.Popen([sys.executable, script, "-a"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 10
            while time.time() < deadline:
                listed = self.api("GET", "/backends")[1]
                if listed and listed[0]["agent_heartbeat"] > "2001":
                    break
                time.sleep(0.1)
            b = listed[0]
            self.assertEqual((b["agent_ref"], b["admin_state"], b["load_factor"], b["bbb"]["host"]),
                             ("bbb01", "init", 2, self.bbb_base + "/bigbluebutton/api/"))
            self.assertEqual(self.api("GET", "/agent/backend", token=token)[1]["id"], b["id"])
            self.assertEqual(self.api("PATCH", "/backends/" + b["id"], {"admin_state": "ready"})[0], 200)
            self.app.poll_once()
            record = self.app.backends[b["id"]]
            self.assertTrue(b3scale.routable(record))
        finally:
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=5), 0)
        # The heartbeat ages: unroutable once older than upstream's 5 s.
        beat = record["agent_heartbeat"]
        self.assertTrue(b3scale.routable(record, now=beat + 4.9))
        self.assertFalse(b3scale.routable(record, now=beat + 5.1))

    def test_create_is_routed_only_to_backends_with_a_recent_heartbeat(self):
        status, fe = self.api("POST", "/frontends", {"bbb": {"key": "school", "secret": "fe-secret"}})
        self.assertEqual((status, fe["active"]), (200, True))
        node = b3scale.mint_token(JWT_SECRET, "bbb01", ["b3scale:node"])
        backend = self.create(token=node, admin_state="ready")
        self.app.poll_once()

        def create(meeting, secret="fe-secret"):
            q = "meetingID=%s&name=%s" % (meeting, meeting)
            sig = hashlib.sha256(("create" + q + secret).encode()).hexdigest()
            status, _, body = http("GET", "%s/bbb/school/bigbluebutton/api/create?%s&checksum=%s"
                                   % (self.base, q, sig))
            root = ET.fromstring(body)
            return status, root.findtext("returncode"), root.findtext("messageKey") or ""

        # Registered by its agent and ready, but no heartbeat yet: nothing to route to.
        self.assertEqual(create("m1"), (500, "FAILED", "b3scaleGatewayError"))
        self.assertEqual(self.api("POST", "/agent/heartbeat", token=node)[0], 200)
        self.assertEqual(create("m1")[:2], (200, "SUCCESS"))
        self.assertEqual(create("m2", secret="wrong")[2], "checksumError")
        # The heartbeat expires after 5 s: unroutable again.
        self.app.backends[backend["id"]]["agent_heartbeat"] -= 5.5
        self.assertEqual(create("m3"), (500, "FAILED", "b3scaleGatewayError"))
        # An admin-created backend never gets a heartbeat: never routed to.
        other = self.create(host=self.bbb_base + "/bigbluebutton/api/x/")
        self.api("PATCH", "/backends/" + other["id"], {"admin_state": "ready"})
        self.app.poll_once()
        self.assertEqual(create("m4"), (500, "FAILED", "b3scaleGatewayError"))

    def test_admin_created_backend_gets_no_heartbeat(self):
        backend = self.create()
        self.api("PATCH", "/backends/" + backend["id"], {"admin_state": "ready"})
        self.app.poll_once()
        record = self.app.backends[backend["id"]]
        self.assertEqual((record["node_state"], record["agent_ref"]), ("ready", None))
        self.assertFalse(b3scale.routable(record))
        # No agent can send this backend's heartbeats: a node token finds no backend of its own.
        node = b3scale.mint_token(JWT_SECRET, "bbb01", ["b3scale:node"])
        self.assertEqual(self.api("POST", "/agent/heartbeat", token=node), (404, {"message": "Not Found"}))
        self.assertEqual(self.api("POST", "/agent/heartbeat")[0], 403)

    def test_cli_mint_token_and_sigterm(self):
        env = dict(os.environ, B3SCALE_API_JWT_SECRET=JWT_SECRET)
        script = os.path.join(HERE, "b3scale.py")
        token = subprocess.run([sys.executable, script, "mint-token", "--sub", "cli", "--scopes", "b3scale:admin",
                                "--ttl", "60"], env=env, capture_output=True, text=True, check=True).stdout.strip()
        self.assertEqual(b3scale.verify_token(token, JWT_SECRET)["sub"], "cli")
        proc = subprocess.Popen([sys.executable, script, "--listen", "127.0.0.1:0", "--quiet"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            self.base = "http://127.0.0.1:%d" % int(proc.stdout.readline().split()[3].rsplit(":", 1)[1])
            self.assertEqual(self.api("POST", "/ctrl/migrate", token=token)[0], 200)
            self.assertEqual(self.api("GET", "/backends", token=token), (200, []))
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=5), 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()


# ==========================================================================
# Stand-in bbb-install.sh: only what can run without touching this machine
# ==========================================================================

STANDIN = os.path.join(HERE, "..", "www", "bbb-install.sh")


class StandinScriptTest(unittest.TestCase):
    def test_generated_copy_is_current_and_parses(self):
        build = subprocess.run([sys.executable, os.path.join(HERE, "..", "bbb", "build-standin"), "--check"],
                               capture_output=True, text=True)
        self.assertEqual(build.returncode, 0, build.stderr)
        self.assertEqual(subprocess.run(["bash", "-n", STANDIN]).returncode, 0)
        with open(STANDIN) as f:
            text = f.read()
        self.assertNotIn("@@BBB_API_EMULATOR_PY@@", text)
        self.assertIn("EMULATOR of BigBlueButton's bbb-web API", text)

    @unittest.skipUnless(os.uname().machine == "x86_64", "the script refuses other architectures")
    def test_rejects_like_the_real_script_before_changing_anything(self):
        cases = [
            (["-v", "focal-270", "-s", "n.lab", "-e", "a@lab"],
             "This script can only install BigBlueButton 3.0 and is meant to be run on Ubuntu 22.04 (jammy) server."),
            (["-v", "jammy-300", "-s", "bbb.example.com", "-e", "a@lab"],
             "You must specify a valid hostname (not the hostname given in the docs)."),
            (["-v", "jammy-300", "-s", "n.lab", "-e", "info@example.com"],
             "You must specify a valid email address (not the email in the docs)."),
            (["-c", "turn.example.com:1234", "-v", "jammy-300"],
             "You must specify a valid hostname (not the example given in the docs)"),
            (["-c", "turn.lab:1234abcd", "-v", "jammy-300"],
             "You must specify a new password (not the example given in the docs)."),
            # check_version: only a repository that exists (the line, or a known release).
            (["-v", "jammy-300-3.0.99", "-s", "n.lab", "-e", "a@lab"],
             "Unable to locate packages for jammy-300-3.0.99 at ubuntu.bigbluebutton.org."),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                run = subprocess.run(["bash", STANDIN] + args, capture_output=True, text=True, timeout=10)
                self.assertEqual(run.returncode, 1)
                self.assertIn("bbb-install: " + message, run.stderr)
        usage = subprocess.run(["bash", STANDIN, "-h"], capture_output=True, text=True, timeout=10)
        self.assertEqual(usage.returncode, 0)
        self.assertIn("LAB STAND-IN", usage.stderr)


if __name__ == "__main__":
    unittest.main()
