#!/usr/bin/env python3
"""EMULATOR of BigBlueButton's bbb-web API, for tests. NOT BigBlueButton.

This program imitates the HTTP API that bbb-web (BigBlueButton 3.0) serves
under /bigbluebutton/api, closely enough for the rollout lab: checksums,
meetings, participants and the XML shapes of the real responses. It has no
audio, video, HTML5 client or recording. On lab hosts the stand-in
bbb-install.sh runs it as the systemd unit bbb-web.service.

Written from the public sources, not copied from them:
  - checksum: GetChecksum / GetChecksumValidator (bigbluebutton-web): the raw
    query string minus "&checksum=X", "checksum=X&" or "checksum=X"; the
    algorithm is chosen by the checksum length (40 sha1, 64 sha256,
    96 sha384, 128 sha512) and must be listed in supportedChecksumAlgorithms;
    an empty securitySalt disables the check, as in bbb-web.
  - XML element names and order: the freemarker templates api-version,
    create-meeting, get-meetings, get-meeting-info, is-meeting-running,
    api-error and join-meeting (bigbluebutton-web/src/main/webapp/WEB-INF/freemarker).
  - error keys and messages: ApiController.groovy and the validation
    constraints (checksumError "Checksums do not match", notFound "A meeting
    with that ID does not exist", missingParamMeetingID, idNotUnique, ...).

Deliberate simplifications (the tests rely on them being documented):
  - join: instead of a browser session, the participant counts as joined the
    moment the API call is accepted (participantCount+1, running=true). With
    redirect=false the XML answer is returned, otherwise a 302 to
    <defaultHTML5ClientUrl>?sessionToken=..., which this emulator also answers.
  - /emulator/leave?meetingID=X[&userID=U] (no checksum) removes one
    participant; /emulator/state shows all meetings as JSON; POST
    /emulator/reset forgets all meetings. These three are NOT part of BBB.
  - a meeting without participants stays until it is ended (the real one
    expires after meetingExpireIfNoUserJoinedInMinutes /
    meetingExpireWhenLastUserLeftInMinutes).
  - end is asynchronous as in the real server: the meeting is marked
    hasBeenForciblyEnded at once and disappears --end-delay seconds later.
  - POST: the checksum covers the URL query string only (as api.md says);
    form-encoded body parameters are read as parameters too.
  - restarting the process without --state FILE forgets every meeting, as a
    restart of all the real services (bbb-conf --restart) ends them.
  - --state FILE stands for what akka-apps and FreeSWITCH hold: the meetings
    themselves, which outlive a restart of bbb-web alone. This process is
    bbb-web; a restart of it is a restart of bbb-web under running classes.
    As in BBB 3.0 (docs/sources.md, "bbb-web restarted under a class"), bbb-web
    keeps its meetings only in memory (MeetingService.meetings), fills that map
    only from create, and asks akka-apps for nothing when it starts. So every
    meeting in FILE when the process starts is FORGOTTEN: it goes on (its
    participants stay, /emulator/leave and /emulator/state see it, with
    "forgottenByBbbWeb": true), but getMeetings, getMeetingInfo,
    isMeetingRunning, join and end know nothing of it, for the rest of its
    life. A create with the same meetingID makes a new, separate meeting (bbb-web
    gives it a new internalMeetingID, and akka-apps, finding no meeting with that
    id, creates a second one); the forgotten one stays hidden. A forgotten
    meeting ends when its duration is over or when its last participant leaves
    (akka-apps: meetingExpireWhenLastUserLeftInMinutes later, default 1, or
    meetingExpireIfNoUserJoinedInMinutes after its creation when nobody joined,
    default 5; the emulator: at once). Whoever removes FILE before a restart ends them all, as
    a restart of akka-apps does.
  - voice bridges: stricter than bbb-web, which takes any voiceBridge. When
    FreeSWITCH dialplans are present (--dialplan-dir, default
    /opt/freeswitch/conf/dialplan/public), create refuses a meeting whose voice
    bridge (given, e.g. by Scalelite, or made up from defaultNumDigitsForTelVoice)
    has a digit count no dialplan's PIN prompt (play_and_get_digits MIN MAX ...
    pin) accepts: on a real node that meeting is created, but no caller can
    ever enter its PIN. The answer is FAILED with the emulator's own messageKey
    emulatorVoiceBridgeNotDialable.
  - breakout rooms: /emulator/breakout-join?meetingID=PARENT&fullName=N (no
    checksum, NOT part of BBB) stands in for a participant entering a breakout
    room in the client. In BBB, akka-apps makes that join URL and signs it with
    sharedSecret from /etc/bigbluebutton/bbb-apps-akka.conf (--akka-conf;
    written by the bbb-apps-akka package, kept equal to securitySalt by
    bbb-conf --setip/--setsecret), with checkSumAlgorithmForBreakouts (default
    sha256); bbb-web then checks it with securitySalt. The emulator does the
    same, so a node whose two secrets differ fails every breakout join with
    checksumError, as a real one does. The breakout room is created on the
    first such join (in BBB, akka asks bbb-web over redis, not the API).

With --webhooks the same program is instead a STAND-IN for bbb-webhooks 3.x
(the optional package; BBB's own is a node.js application), as strict as the
real one where rollout relies on it (docs/sources.md, "The shared secret in
bbb-webhooks"):
  - configuration as node-config reads it for bbb-webhooks (src/common/env.js):
    NODE_CONFIG_DIR is /etc/bigbluebutton/bbb-webhooks/ then the working
    directory's config/ (the unit's WorkingDirectory is
    /usr/local/bigbluebutton/bbb-webhooks); in each directory default.yml,
    $NODE_ENV.yml (the unit sets production), local.yml, local-$NODE_ENV.yml,
    in that order of names, the directories in that order for each name, later
    values winning; the environment variable SHARED_SECRET wins over all
    (config/custom-environment-variables.yml). Read once, when it starts: a
    changed secret needs a restart, as with the real one.
  - hooks/create, hooks/list and hooks/destroy under bbb.apiPath (default
    /bigbluebutton/api) check the checksum as src/out/webhooks/utils.js does:
    the request URL minus the first "&checksum=X", "checksum=X&" or trailing
    "checksum=X", the part after "?", method "hooks/create" etc.; the
    algorithm by the checksum's length, which must be one of the supported ones
    (sha1, sha256, sha384, sha512: the packaged default); compared exactly
    (lowercase hex), with bbb.sharedSecret. Wrong: checksumError. A length of no
    algorithm makes the real one throw: here HTTP 500. hooks/ping needs none.
  - hooks are kept in memory (the real one keeps them in redis) and never
    called back: the stand-in makes no outgoing connection.
  - binds 127.0.0.1:3005 by default, as the packaged config.

Network: binds only the --listen addresses (default 127.0.0.1:8090) and makes
no outgoing connections at all.
"""

import argparse
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import signal
import ssl
import string
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

EMULATOR_NAME = "bbb-api-emulator"
DEFAULT_PROPERTIES = "/etc/bigbluebutton/bbb-web.properties"
DEFAULT_DEFAULTS = "/usr/share/bbb-web/WEB-INF/classes/bigbluebutton.properties"
DEFAULT_RELEASE = "/etc/bigbluebutton/bigbluebutton-release"
DEFAULT_AKKA_CONF = "/etc/bigbluebutton/bbb-apps-akka.conf"
DEFAULT_DIALPLAN_DIR = "/opt/freeswitch/conf/dialplan/public"
PIN_PROMPT = re.compile(r'application="play_and_get_digits"\s+data="(\d+)\s+(\d+)\s[^"]*\bpin\b')
ALGO_BY_LENGTH = {40: "sha1", 64: "sha256", 96: "sha384", 128: "sha512"}
API_CALLS = ("create", "join", "end", "isMeetingRunning", "getMeetings", "getMeetingInfo")
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


# --------------------------------------------------------------------------
# Configuration (Java-properties files, defaults first, overrides second)
# --------------------------------------------------------------------------

def parse_properties(text):
    """Parse the subset of java.util.Properties syntax bbb-web files use."""
    props = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].lstrip()
        i += 1
        if not line or line[0] in "#!":
            continue
        # backslash continuation, bounded by the number of lines
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + lines[i].lstrip()
            i += 1
        m = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)$", line)
        if m:
            props[m.group(1)] = m.group(2)
        else:
            props[line.strip()] = ""
    return props


def parse_akka_shared_secret(text):
    """sharedSecret from bbb-apps-akka.conf (HOCON): the last `sharedSecret = "..."` line
    wins, as a later definition does in HOCON; None when the file sets none. The package's
    preinst writes it inside `services { ... }` with the value in double quotes, and
    bbb-conf --setip rewrites exactly that form."""
    found = None
    for line in text.splitlines():
        m = re.match(r'\s*(?:services\.)?sharedSecret\s*[=:]\s*"([^"]*)"\s*$', line)
        if m:
            found = m.group(1)
    return found


def dialplan_pin_lengths(directory):
    """[(file, min, max)] of the PIN prompts in the FreeSWITCH dialplan files of directory."""
    found = []
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".xml"))
    except (OSError, TypeError):
        return found
    for name in names:
        text = read_file(os.path.join(directory, name)) or ""
        for m in PIN_PROMPT.finditer(text):
            found.append((os.path.join(directory, name), int(m.group(1)), int(m.group(2))))
    return found


def resolve_placeholders(props):
    """Resolve ${key} references the way Spring does for bbb-web."""
    out = dict(props)
    for _ in range(10):  # bounded: nested references are shallow
        changed = False
        for key, value in out.items():
            new = re.sub(r"\$\{([^}]+)\}", lambda m: out.get(m.group(1), m.group(0)), value)
            if new != value:
                out[key] = new
                changed = True
        if not changed:
            break
    return out


def read_file(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


class Config:
    """bbb-web settings the emulator needs, read from both property files."""

    def __init__(self, defaults_path, properties_path, release_path, akka_path=None, dialplan_dir=None):
        merged = {}
        self.sources = []
        for path in (defaults_path, properties_path):
            text = read_file(path) if path else None
            if text is not None:
                merged.update(parse_properties(text))
                self.sources.append(path)
        p = resolve_placeholders(merged)
        self.props = p
        self.secret = p.get("securitySalt", "")
        self.server_url = p.get("bigbluebutton.web.serverURL", "http://bigbluebutton.example.com").rstrip("/")
        self.algorithms = [a.strip().lower() for a in
                           p.get("supportedChecksumAlgorithms", "sha1,sha256,sha384,sha512").split(",") if a.strip()]
        self.api_version = p.get("apiVersion", "2.0")
        self.dial_number = p.get("defaultDialAccessNumber", "613-555-1234")
        self.num_digits = _int(p.get("defaultNumDigitsForTelVoice"), 5)
        self.max_users = _int(p.get("defaultMaxUsers"), 0)
        self.duration = _int(p.get("defaultMeetingDuration"), 0)
        self.allow_reveal = p.get("allowRevealOfBBBVersion", "false").strip().lower() == "true"
        self.guest_policy = p.get("defaultGuestPolicy", "ALWAYS_ACCEPT").strip()
        self.disable_recording = p.get("disableRecordingDefault", "false").strip().lower() == "true"
        self.html5_url = p.get("defaultHTML5ClientUrl", self.server_url + "/html5client/join")
        logout = p.get("bigbluebutton.web.logoutURL", "default").strip()
        self.logout_url = self.server_url if logout in ("", "default") else logout
        release = parse_properties(read_file(release_path) or "") if release_path else {}
        self.release = release.get("BIGBLUEBUTTON_RELEASE", "")
        self.lab_build = release.get("BBB_LAB_BUILD", "")
        akka = read_file(akka_path) if akka_path else None
        # None: no bbb-apps-akka.conf (or no sharedSecret in it): akka cannot sign anything.
        self.akka_secret = parse_akka_shared_secret(akka) if akka is not None else None
        self.akka_path = akka_path
        # Digit counts callers can enter as a PIN; empty: no dial-in, any voice bridge.
        self.pin_lengths = dialplan_pin_lengths(dialplan_dir) if dialplan_dir else []

    @property
    def bbb_version(self):
        # bbb-web only reveals its version when allowRevealOfBBBVersion=true
        return self.release if self.allow_reveal else ""


def _int(value, default):
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return default


# --------------------------------------------------------------------------
# Checksum
# --------------------------------------------------------------------------

def query_without_checksum(raw_query, checksum):
    """Strip the checksum parameter as bbb-web's GetChecksum does (string replace)."""
    q = CONTROL_CHARS.sub("", raw_query or "").strip()
    q = q.replace("&checksum=" + checksum, "")
    q = q.replace("checksum=" + checksum + "&", "")
    q = q.replace("checksum=" + checksum, "")
    return q


def checksum_valid(call, raw_query, checksum, secret, algorithms):
    if secret == "":
        return True  # bbb-web: "Security is disabled in this service"
    if not checksum:
        return False
    algo = ALGO_BY_LENGTH.get(len(checksum))
    if algo is None or algo not in algorithms:
        return False
    data = (call + query_without_checksum(raw_query, checksum) + secret).encode("utf-8")
    expected = hashlib.new(algo, data).hexdigest()
    return hmac.compare_digest(expected, checksum.lower())


def sign(call, query, secret, algo="sha1"):
    """Helper for clients and tests: the checksum for call + query."""
    return hashlib.new(algo, (call + query + secret).encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------
# Meetings
# --------------------------------------------------------------------------

def java_date(ms):
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(ms / 1000))


def rand_token(n):
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(n))


class Emulator:
    """Meeting state shared by every listening socket."""

    def __init__(self, config_loader, state_file=None, end_delay=0.5, log=None):
        self._load_config = config_loader
        self.config = config_loader()
        self.state_file = state_file
        self.end_delay = end_delay
        self.lock = threading.Lock()
        self.meetings = {}  # external meetingID -> dict: the meetings bbb-web knows
        # internalMeetingID -> dict: meetings akka-apps still runs that this bbb-web never
        # heard of (it started after them; see --state in the module's text).
        self.forgotten = {}
        self.log = log or (lambda msg: None)
        self._load_state()

    # -- config -----------------------------------------------------------
    def reload(self):
        cfg = self._load_config()
        with self.lock:
            self.config = cfg
        self.log("configuration re-read from " + ", ".join(cfg.sources or ["(no files)"]))

    # -- persistence ------------------------------------------------------
    def _load_state(self):
        if not self.state_file:
            return
        text = read_file(self.state_file)
        if not text:
            return
        try:
            data = json.loads(text)
            # This process is a new bbb-web: akka-apps' meetings go on, unknown to it.
            now = int(time.time() * 1000)
            self.forgotten = {m["internalMeetingID"]: dict(m, forgotten=True)
                              for m in data.get("meetings", [])
                              if not m.get("forciblyEnded") and not (m.get("removeAt") and m["removeAt"] <= now)}
        except (ValueError, KeyError, TypeError, AttributeError):
            self.log("state file unreadable, starting empty: " + self.state_file)
            return
        if self.forgotten:
            self.log("bbb-web started under %d running meeting(s) it does not know (from %s)"
                     % (len(self.forgotten), self.state_file))
        self._save_state()

    def _save_state(self):
        if not self.state_file:
            return
        tmp = self.state_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"meetings": list(self.meetings.values()) + list(self.forgotten.values())}, f, indent=1)
        os.replace(tmp, self.state_file)

    def _reap(self, now_ms):
        """Drop meetings whose end request has taken effect (lazy, no timers)."""
        gone = [k for k, m in self.meetings.items()
                if (m.get("removeAt") and m["removeAt"] <= now_ms)
                or (m["duration"] > 0 and m["startTime"] and now_ms - m["startTime"] > m["duration"] * 60000)]
        for k in gone:
            del self.meetings[k]
        # akka-apps ends a forgotten meeting when its duration is over or nobody is left.
        over = [k for k, m in self.forgotten.items()
                if not m["users"]
                or (m["duration"] > 0 and m["startTime"] and now_ms - m["startTime"] > m["duration"] * 60000)]
        for k in over:
            del self.forgotten[k]
        if gone or over:
            self._save_state()

    # -- API calls --------------------------------------------------------
    def handle(self, call, raw_query, params):
        """Return (status, headers, body) for /bigbluebutton/api/<call>."""
        with self.lock:
            cfg = self.config
            self._reap(int(time.time() * 1000))
            if call == "":
                return xml_ok(version_xml(cfg))
            checksum = first(params, "checksum")
            if not checksum_valid(call, raw_query, checksum, cfg.secret, cfg.algorithms):
                err = ("checksumError", "Checksums do not match")
                if call == "join":
                    return self.join_error_redirect(cfg, [err], params)
                return xml_ok(error_xml(*err))
            return getattr(self, "api_" + call)(cfg, params)

    def _meeting_id_error(self, params):
        mid = first(params, "meetingID")
        if mid is None or mid.strip() == "":
            return ("missingParamMeetingID", "You must provide a meeting ID")
        if not 2 <= len(mid) <= 256:
            return ("validationError", "Meeting ID must be between 2 and 256 characters")
        if "," in mid:
            return ("validationError", "Meeting ID cannot contain ','")
        return None

    def api_create(self, cfg, params):
        err = self._meeting_id_error(params)
        name = first(params, "name")
        if err is None and (name is None or name.strip() == ""):
            err = ("validationError", "You must provide a meeting name")
        elif err is None and not 2 <= len(name) <= 256:
            err = ("validationError", "Meeting name must be between 2 and 256 characters")
        if err:
            return xml_ok(error_xml(*err))
        mid = first(params, "meetingID")
        apw, mpw = first(params, "attendeePW"), first(params, "moderatorPW")
        existing = self.meetings.get(mid)
        if existing is not None:
            if not existing["forciblyEnded"] and (
                    (existing["attendeePW"] == (apw or "") and existing["moderatorPW"] == (mpw or ""))
                    or (not apw and not mpw)):
                return xml_ok(meeting_xml(existing, "duplicateWarning",
                                          "This conference was already in existence and may currently be in progress."))
            return xml_ok(error_xml("idNotUnique",
                                    "A meeting already exists with that meeting ID.  Please use a different meeting ID."))
        bridge = first(params, "voiceBridge")
        used = {m["voiceBridge"] for m in self.meetings.values()}
        if bridge:
            if bridge in used:
                return xml_ok(error_xml("nonUniqueVoiceBridge", "The selected voice bridge is already in use."))
        else:
            lo, hi = 10 ** (cfg.num_digits - 1), 10 ** cfg.num_digits - 1
            for _ in range(10):  # bbb-web also tries 10 times
                bridge = str(random.randint(lo, hi))
                if bridge not in used:
                    break
        breakout = first(params, "isBreakout", "false").lower() == "true"
        # Breakout rooms are not dialled into by PIN (akka names their voice conference
        # parent voice bridge + room index, createVoiceConfId).
        if not breakout and cfg.pin_lengths and not any(lo <= len(bridge) <= hi for _, lo, hi in cfg.pin_lengths):
            where = ", ".join("%s reads %d to %d digits" % (f, lo, hi) for f, lo, hi in cfg.pin_lengths)
            return xml_ok(error_xml("emulatorVoiceBridgeNotDialable",
                                    "EMULATOR: voice bridge %s has %d digits, but no caller could enter it: %s"
                                    % (bridge, len(bridge), where)))
        now = int(time.time() * 1000)
        record = first(params, "record", "false").lower() == "true" and not cfg.disable_recording
        meeting = {
            "meetingID": mid,
            "internalMeetingID": hashlib.sha1(mid.encode("utf-8")).hexdigest() + "-" + str(now),
            "name": name,
            "attendeePW": apw or "",
            "moderatorPW": mpw or "",
            "createTime": now,
            "voiceBridge": bridge,
            "dialNumber": first(params, "dialNumber") or cfg.dial_number,
            "duration": _int(first(params, "duration"), cfg.duration),
            "maxUsers": _int(first(params, "maxParticipants"), cfg.max_users),
            "record": record,
            "isBreakout": first(params, "isBreakout", "false").lower() == "true",
            "metadata": {k[5:].lower(): v[0] for k, v in params.items()
                         if k.lower().startswith("meta_") and XML_NAME.match(k[5:])},
            "users": [],
            "hasUserJoined": False,
            "running": False,
            "forciblyEnded": False,
            "startTime": 0,
            "endTime": 0,
            "removeAt": 0,
        }
        self.meetings[mid] = meeting
        self._save_state()
        self.log("create %s (voiceBridge %s)" % (mid, bridge))
        return xml_ok(meeting_xml(meeting, None, None))

    def api_join(self, cfg, params):
        err = self._meeting_id_error(params)
        if err is None and not (first(params, "fullName") or "").strip():
            err = ("missingParamFullName", "You must provide your name")
        mid = first(params, "meetingID")
        meeting = self.meetings.get(mid) if err is None else None
        if err is None and meeting is None:
            err = ("notFound", "A meeting with that ID does not exist")
        if err is None and meeting["forciblyEnded"]:
            err = ("meetingForciblyEnded", "You can not join a meeting that has already been forcibly ended")
        if err:
            return self.join_error_redirect(cfg, [err], params)
        role_param = (first(params, "role") or "").lower()
        password = first(params, "password")
        if role_param in ("moderator", "viewer"):
            role = "MODERATOR" if role_param == "moderator" else "VIEWER"
        elif password:
            if meeting["moderatorPW"] and meeting["attendeePW"]:
                if password == meeting["moderatorPW"]:
                    role = "MODERATOR"
                elif password == meeting["attendeePW"]:
                    role = "VIEWER"
                else:
                    return xml_ok(error_xml("Params required", "You must enter a valid password"))
            else:
                return xml_ok(error_xml("Params required", "You must send the 'role' parameter, since "
                                        "this meeting doesn't have any password."))
        else:
            return xml_ok(error_xml("Params required", "You must either send the valid role of the user, or "
                                    "the password, sould the meeting has one."))
        if meeting["maxUsers"] > 0 and len(meeting["users"]) >= meeting["maxUsers"]:
            return self.join_error_redirect(
                cfg, [("maxParticipantsReached", "The number of participants allowed for this meeting has been reached.")],
                params)
        internal_user = "w_" + rand_token(12)
        user = {
            "userID": first(params, "userID") or internal_user,
            "internalUserID": internal_user,
            "fullName": first(params, "fullName").strip(),
            "role": role,
            "joinedAt": int(time.time() * 1000),
        }
        meeting["users"].append(user)
        meeting["hasUserJoined"] = True
        if not meeting["running"]:
            meeting["running"] = True
            meeting["startTime"] = user["joinedAt"]
        self._save_state()
        self.log("join %s as %s (%d participants)" % (mid, role, len(meeting["users"])))
        session = rand_token(16)
        url = cfg.html5_url + "?sessionToken=" + session
        if (first(params, "redirect") or "true").lower() == "false":
            body = ("<response><returncode>SUCCESS</returncode><messageKey>successfullyJoined</messageKey>"
                    "<message>You have joined successfully.</message>"
                    "<meeting_id>%s</meeting_id><user_id>%s</user_id><auth_token>%s</auth_token>"
                    "<session_token>%s</session_token><guestStatus>ALLOW</guestStatus><url>%s</url></response>"
                    % (x(meeting["internalMeetingID"]), x(internal_user), rand_token(12), session, x(url)))
            return xml_ok(body)
        return 302, {"Location": url, "Cache-Control": "no-cache"}, b""

    def join_error_redirect(self, cfg, errors, params):
        """bbb-web answers join errors with a redirect carrying the errors as JSON."""
        target = first(params, "logoutURL") or cfg.logout_url
        payload = json.dumps([{"key": k, "message": m} for k, m in errors], separators=(",", ":"))
        sep = "&" if "?" in target else "?"
        location = target + sep + "errors=" + urllib.parse.quote(payload, safe=":,")
        return 302, {"Location": location, "Cache-Control": "no-cache"}, b""

    def api_isMeetingRunning(self, cfg, params):
        err = self._meeting_id_error(params)
        if err:
            return xml_ok(error_xml(*err))
        m = self.meetings.get(first(params, "meetingID"))
        running = bool(m and m["running"])
        return xml_ok("<response><returncode>SUCCESS</returncode><running>%s</running></response>"
                      % ("true" if running else "false"))

    def _existing(self, params):
        err = self._meeting_id_error(params)
        if err:
            return None, err
        m = self.meetings.get(first(params, "meetingID"))
        if m is None:
            return None, ("notFound", "A meeting with that ID does not exist")
        return m, None

    def api_getMeetingInfo(self, cfg, params):
        m, err = self._existing(params)
        if err:
            return xml_ok(error_xml(*err))
        return xml_ok(meeting_info_xml(m))

    def api_getMeetings(self, cfg, params):
        if not self.meetings:
            return xml_ok("<response><returncode>SUCCESS</returncode><meetings/>"
                          "<messageKey>noMeetings</messageKey><message>no meetings were found on this server</message>"
                          "</response>")
        inner = "".join(meeting_entry_xml(m) for m in self.meetings.values())
        return xml_ok("<response><returncode>SUCCESS</returncode><meetings>%s</meetings></response>" % inner)

    def api_end(self, cfg, params):
        m, err = self._existing(params)
        if err:
            return xml_ok(error_xml(*err))
        password = first(params, "password")
        if password and m["moderatorPW"] and password != m["moderatorPW"]:
            return xml_ok(error_xml("invalidPassword", "Provided moderator password is incorrect"))
        if not m["forciblyEnded"]:
            now = int(time.time() * 1000)
            m["forciblyEnded"] = True
            m["endTime"] = now
            m["removeAt"] = now + int(self.end_delay * 1000)
            self._save_state()
            self.log("end %s (removed in %.1fs)" % (m["meetingID"], self.end_delay))
        return xml_ok("<response><returncode>SUCCESS</returncode><messageKey>sentEndMeetingRequest</messageKey>"
                      "<message>A request to end the meeting was sent.  Please wait a few seconds, and then use the "
                      "getMeetingInfo or isMeetingRunning API calls to verify that it was ended.</message></response>")

    # -- emulator-only endpoints -----------------------------------------
    def leave(self, params):
        with self.lock:
            self._reap(int(time.time() * 1000))
            mid = first(params, "meetingID") or ""
            # A participant of a meeting bbb-web forgot is still in it (akka-apps' meeting);
            # of the meetings with this meetingID, the first that has participants.
            found = [m for m in [self.meetings.get(mid)] + list(self.forgotten.values())
                     if m is not None and m["meetingID"] == mid]
            m = next((c for c in found if c["users"]), found[0] if found else None)
            if m is None:
                return json_reply(404, {"error": "no such meeting"})
            if not m["users"]:
                return json_reply(409, {"error": "meeting has no participants", "meetingID": m["meetingID"]})
            uid = first(params, "userID")
            idx = len(m["users"]) - 1
            if uid:
                matches = [i for i, u in enumerate(m["users"]) if u["userID"] == uid]
                if not matches:
                    return json_reply(404, {"error": "no such participant", "userID": uid})
                idx = matches[-1]
            user = m["users"].pop(idx)
            self._save_state()
            self.log("leave %s (%d participants)" % (m["meetingID"], len(m["users"])))
            self._reap(int(time.time() * 1000))
            return json_reply(200, {"meetingID": m["meetingID"], "left": user["userID"],
                                    "participantCount": len(m["users"])})

    def breakout_join(self, params):
        """A participant enters the breakout room of meetingID: the join URL is signed with
        akka's sharedSecret and checked with securitySalt (see the module docstring)."""
        with self.lock:
            cfg = self.config
            self._reap(int(time.time() * 1000))
            parent = self.meetings.get(first(params, "meetingID") or "")
            if parent is None or parent["forciblyEnded"]:
                return json_reply(404, {"error": "no such meeting"})
            if cfg.akka_secret is None:
                return json_reply(409, {"error": "akka-apps has no sharedSecret (%s)" % cfg.akka_path,
                                        "joined": False})
            bid = parent["meetingID"] + "-breakout-1"
            if bid not in self.meetings:
                created = self.api_create(cfg, {"meetingID": [bid], "name": [parent["name"] + " (Room 1)"],
                                                "isBreakout": ["true"], "voiceBridge": [parent["voiceBridge"] + "1"]})
                if b"<returncode>SUCCESS</returncode>" not in created[2]:
                    return json_reply(500, {"error": "breakout room not created", "joined": False})
            name = (first(params, "fullName") or "Participant").strip()
            # BreakoutRoomsUtil (akka-bbb-apps BreakoutApp2x.scala): parameters sorted by name,
            # checksum(apiCall + baseString + sharedSecret), sha256 unless
            # checkSumAlgorithmForBreakouts says otherwise. redirect=false: the emulator's
            # caller wants the XML answer, not the client's redirect.
            query = urllib.parse.urlencode(sorted({"fullName": name, "isBreakout": "true", "meetingID": bid,
                                                   "role": "viewer", "redirect": "false"}.items()))
            checksum = sign("join", query, cfg.akka_secret, "sha256")
        # bbb-web's own check, as for any join URL.
        raw = query + "&checksum=" + checksum
        status, headers, body = self.handle("join", raw, urllib.parse.parse_qs(raw, keep_blank_values=True))
        ok = status == 200 and b"<returncode>SUCCESS</returncode>" in body
        self.log("breakout join %s: %s" % (bid, "ok" if ok else "refused"))
        # A refused join is bbb-web's redirect with the errors (checksumError) in its URL.
        return json_reply(200 if ok else 403, {"meetingID": bid, "joined": ok, "status": status,
                                               "answer": body.decode("utf-8", "replace"),
                                               "location": headers.get("Location", "")})

    def snapshot(self):
        with self.lock:
            self._reap(int(time.time() * 1000))
            cfg = self.config
            return json_reply(200, {
                "emulator": EMULATOR_NAME,
                "serverURL": cfg.server_url,
                "release": cfg.release,
                "labBuild": cfg.lab_build,
                "checksumAlgorithms": cfg.algorithms,
                "securityEnabled": cfg.secret != "",
                "meetings": [public_meeting(m) for m in self.meetings.values()]
                + [public_meeting(m) for m in self.forgotten.values()],
            })

    def reset(self):
        with self.lock:
            n = len(self.meetings) + len(self.forgotten)
            self.meetings.clear()
            self.forgotten.clear()
            self._save_state()
        return json_reply(200, {"reset": True, "meetingsRemoved": n})


def public_meeting(m):
    return {
        "meetingID": m["meetingID"], "internalMeetingID": m["internalMeetingID"], "name": m["name"],
        "createTime": m["createTime"], "voiceBridge": m["voiceBridge"], "running": m["running"],
        "hasBeenForciblyEnded": m["forciblyEnded"], "participantCount": len(m["users"]),
        "moderatorCount": moderators(m), "forgottenByBbbWeb": bool(m.get("forgotten")), "attendees": [
            {"userID": u["userID"], "fullName": u["fullName"], "role": u["role"]} for u in m["users"]],
    }


def first(params, key, default=None):
    values = params.get(key)
    if not values:
        return default
    return CONTROL_CHARS.sub("", values[0]).strip()


def moderators(m):
    return sum(1 for u in m["users"] if u["role"] == "MODERATOR")


# --------------------------------------------------------------------------
# XML rendering (element order follows the bbb-web freemarker templates)
# --------------------------------------------------------------------------

def x(value):
    return escape(str(value))


def b(value):
    return "true" if value else "false"


def xml_ok(body):
    return 200, {"Content-Type": "text/xml;charset=utf-8", "Cache-Control": "no-cache"}, body.encode("utf-8")


def json_reply(status, obj):
    return status, {"Content-Type": "application/json"}, (json.dumps(obj, indent=1) + "\n").encode("utf-8")


def error_xml(key, message):
    return ("<response><returncode>FAILED</returncode><messageKey>%s</messageKey><message>%s</message></response>"
            % (x(key), x(message)))


def version_xml(cfg):
    host = urllib.parse.urlsplit(cfg.server_url).netloc
    bbb_version = cfg.bbb_version
    return ("<response><returncode>SUCCESS</returncode><version>%s</version><apiVersion>%s</apiVersion>%s"
            "<graphqlWebsocketUrl>wss://%s/graphql</graphqlWebsocketUrl>"
            "<graphqlApiUrl>https://%s/api/rest</graphqlApiUrl></response>"
            % (x(cfg.api_version), x(cfg.api_version),
               "<bbbVersion>%s</bbbVersion>" % x(bbb_version) if bbb_version else "<bbbVersion/>",
               x(host), x(host)))


def passwords_xml(m):
    out = ""
    if m["attendeePW"]:
        out += "<attendeePW>%s</attendeePW>" % x(m["attendeePW"])
    if m["moderatorPW"]:
        out += "<moderatorPW>%s</moderatorPW>" % x(m["moderatorPW"])
    return out


def meeting_xml(m, key, message):
    """create-meeting.ftlx"""
    return ("<response><returncode>SUCCESS</returncode><meetingID>%s</meetingID>"
            "<internalMeetingID>%s</internalMeetingID><parentMeetingID>bbb-none</parentMeetingID>%s"
            "<createTime>%d</createTime><voiceBridge>%s</voiceBridge><dialNumber>%s</dialNumber>"
            "<createDate>%s</createDate><hasUserJoined>%s</hasUserJoined><duration>%d</duration>"
            "<hasBeenForciblyEnded>%s</hasBeenForciblyEnded><messageKey>%s</messageKey><message>%s</message>"
            "</response>"
            % (x(m["meetingID"]), x(m["internalMeetingID"]), passwords_xml(m), m["createTime"],
               x(m["voiceBridge"]), x(m["dialNumber"]), java_date(m["createTime"]), b(m["hasUserJoined"]),
               m["duration"], b(m["forciblyEnded"]), x(key or ""), x(message or "")))


def attendees_xml(m):
    out = "<attendees>"
    for u in m["users"]:
        out += ("<attendee><userID>%s</userID><fullName>%s</fullName><role>%s</role>"
                "<isPresenter>false</isPresenter><isListeningOnly>false</isListeningOnly>"
                "<hasJoinedVoice>false</hasJoinedVoice><hasVideo>false</hasVideo><clientType>HTML5</clientType>"
                "</attendee>" % (x(u["userID"]), x(u["fullName"]), x(u["role"])))
    return out + "</attendees>"


def metadata_xml(m):
    inner = "".join("<%s>%s</%s>" % (k, x(v), k) for k, v in m["metadata"].items())
    return "<metadata>%s</metadata>" % inner if inner else "<metadata/>"


def counts_xml(m):
    return ("<participantCount>%d</participantCount><listenerCount>0</listenerCount>"
            "<voiceParticipantCount>0</voiceParticipantCount><videoCount>0</videoCount>"
            "<maxUsers>%d</maxUsers><moderatorCount>%d</moderatorCount>"
            % (len(m["users"]), m["maxUsers"], moderators(m)))


def meeting_entry_xml(m):
    """One <meeting> of get-meetings.ftlx"""
    return ("<meeting><meetingName>%s</meetingName><meetingID>%s</meetingID>"
            "<internalMeetingID>%s</internalMeetingID><createTime>%d</createTime><createDate>%s</createDate>"
            "<voiceBridge>%s</voiceBridge><dialNumber>%s</dialNumber>%s<running>%s</running>"
            "<duration>%d</duration><hasUserJoined>%s</hasUserJoined><recording>%s</recording>"
            "<hasBeenForciblyEnded>%s</hasBeenForciblyEnded><startTime>%d</startTime><endTime>%d</endTime>"
            "%s%s%s<isBreakout>%s</isBreakout></meeting>"
            % (x(m["name"]), x(m["meetingID"]), x(m["internalMeetingID"]), m["createTime"],
               java_date(m["createTime"]), x(m["voiceBridge"]), x(m["dialNumber"]), passwords_xml(m),
               b(m["running"]), m["duration"], b(m["hasUserJoined"]), b(m["record"]), b(m["forciblyEnded"]),
               m["startTime"], m["endTime"], counts_xml(m), attendees_xml(m), metadata_xml(m),
               b(m["isBreakout"])))


def meeting_info_xml(m):
    """get-meeting-info.ftlx"""
    return ("<response><returncode>SUCCESS</returncode><meetingName>%s</meetingName><meetingID>%s</meetingID>"
            "<internalMeetingID>%s</internalMeetingID><createTime>%d</createTime><createDate>%s</createDate>"
            "<voiceBridge>%s</voiceBridge><dialNumber>%s</dialNumber>%s<running>%s</running>"
            "<duration>%d</duration><hasUserJoined>%s</hasUserJoined><recording>%s</recording>"
            "<hasBeenForciblyEnded>%s</hasBeenForciblyEnded><startTime>%d</startTime><endTime>%d</endTime>"
            "%s%s%s<isBreakout>%s</isBreakout></response>"
            % (x(m["name"]), x(m["meetingID"]), x(m["internalMeetingID"]), m["createTime"],
               java_date(m["createTime"]), x(m["voiceBridge"]), x(m["dialNumber"]), passwords_xml(m),
               b(m["running"]), m["duration"], b(m["hasUserJoined"]), b(m["record"]), b(m["forciblyEnded"]),
               m["startTime"], m["endTime"], counts_xml(m), attendees_xml(m), metadata_xml(m),
               b(m["isBreakout"])))


# --------------------------------------------------------------------------
# bbb-webhooks stand-in (--webhooks)
# --------------------------------------------------------------------------

WEBHOOKS_ETC_DIR = "/etc/bigbluebutton/bbb-webhooks/"
WEBHOOKS_ALGORITHMS = ("sha1", "sha256", "sha384", "sha512")


def yaml_scalar(v):
    """A YAML scalar as written after `key:`: plain (comment cut), 'single' or "double"."""
    v = v.strip()
    if v.startswith('"'):
        out, i = [], 1
        while i < len(v) and v[i] != '"':
            if v[i] == "\\" and i + 1 < len(v):
                i += 1
                out.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\", "/": "/"}.get(v[i], "\\" + v[i]))
            else:
                out.append(v[i])
            i += 1
        return "".join(out)
    if v.startswith("'"):
        out, i = [], 1
        while i < len(v):
            if v[i] == "'":
                if v[i + 1:i + 2] == "'":
                    out.append("'")
                    i += 2
                    continue
                break
            out.append(v[i])
            i += 1
        return "".join(out)
    return re.sub(r"\s+#.*$", "", v).strip()


def webhooks_bbb_section(text):
    """The keys of the top-level `bbb:` mapping of a YAML file (block form, as the package
    and bbb-conf write it): PyYAML when the host has it, else this reader."""
    try:
        import yaml  # noqa: PLC0415 (optional on lab hosts)
        doc = yaml.safe_load(text) or {}
        section = doc.get("bbb") if isinstance(doc, dict) else None
        return {k: ("" if v is None else str(v)) for k, v in section.items()} if isinstance(section, dict) else {}
    except ImportError:
        pass
    out, inside = {}, False
    for line in text.split("\n"):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line[0].isspace():
            inside = re.match(r"^bbb\s*:\s*(#.*)?$", line) is not None
            continue
        m = re.match(r"^\s+([A-Za-z0-9_]+)\s*:(.*)$", line)
        if inside and m:
            out[m.group(1)] = yaml_scalar(m.group(2))
    return out


class WebhooksConfig:
    """bbb-webhooks' settings, read as node-config reads them (see the module's text)."""

    def __init__(self, dirs, node_env, env=None):
        env = os.environ if env is None else env
        merged = {"apiPath": "/bigbluebutton/api"}
        self.sources = []
        for name in ("default", node_env, "local", "local-" + node_env):
            for d in dirs:
                path = os.path.join(d, name + ".yml")
                text = read_file(path)
                if text is not None:
                    merged.update(webhooks_bbb_section(text))
                    self.sources.append(path)
        if env.get("SHARED_SECRET"):
            merged["sharedSecret"] = env["SHARED_SECRET"]
        self.secret = merged.get("sharedSecret", "")
        self.api_path = merged.get("apiPath", "/bigbluebutton/api").rstrip("/")
        self.algorithms = WEBHOOKS_ALGORITHMS


def webhooks_query(full_url):
    """utils.js queryFromUrl: the URL minus its checksum, after the "?"."""
    q = re.sub(r"&checksum=[^&]*", "", full_url, count=1)
    q = re.sub(r"checksum=[^&]*&", "", q, count=1)
    q = re.sub(r"checksum=[^&]*$", "", q, count=1)
    m = re.search(r"\?(.*)", q)
    return m.group(1) if m else ""


def webhooks_checksum_valid(full_url, secret, algorithms, api_path):
    """utils.js isUrlChecksumValid. Raises ValueError for a length of no algorithm (the
    real one throws)."""
    path, _, query = full_url.partition("?")
    checksums = urllib.parse.parse_qs(query, keep_blank_values=True).get("checksum", [])
    if len(checksums) != 1 or not checksums[0]:
        return False
    checksum = checksums[0]
    algo = ALGO_BY_LENGTH.get(len(checksum))
    if algo is None:
        raise ValueError("No algorithm could be found that matches the provided checksum length: %d"
                         % len(checksum))
    if algo not in algorithms:
        return False
    method = path[len(api_path + "/"):]
    expected = hashlib.new(algo, (method + webhooks_query(full_url) + secret).encode("utf-8")).hexdigest()
    return hmac.compare_digest(expected, checksum)


def webhooks_failure(key, message):
    return xml_ok("<response><returncode>FAILED</returncode><messageKey>%s</messageKey><message>%s</message>"
                  "</response>" % (key, message))


class Webhooks:
    """The hooks API of the bbb-webhooks stand-in; hooks only in memory."""

    def __init__(self, config):
        self.config = config
        self.lock = threading.Lock()
        self.hooks = []  # dicts: id, callbackURL, meetingID, getRaw
        self.next_id = 1

    def handle(self, full_url):
        cfg = self.config
        path, _, query = full_url.partition("?")
        method = path[len(cfg.api_path + "/"):] if path.startswith(cfg.api_path + "/") else None
        if method == "hooks/ping":
            return xml_ok("<response><returncode>SUCCESS</returncode><message>bbb-webhooks API up!</message>"
                          "</response>")
        if method not in ("hooks/create", "hooks/list", "hooks/destroy"):
            return 404, {"Content-Type": "text/plain"}, b"Not Found\n"
        try:
            if not webhooks_checksum_valid(full_url, cfg.secret, cfg.algorithms, cfg.api_path):
                return webhooks_failure("checksumError", "You did not pass the checksum security check.")
        except ValueError as e:
            return 500, {"Content-Type": "text/plain"}, ("Error: %s\n" % e).encode("utf-8")
        params = urllib.parse.parse_qs(query, keep_blank_values=True)
        with self.lock:
            return getattr(self, "_" + method.split("/")[1])(params)

    def _create(self, params):
        url, meeting = first(params, "callbackURL"), first(params, "meetingID")
        if url is None:
            return webhooks_failure("missingParamCallbackURL", "You must specify a callbackURL in the parameters.")
        raw = first(params, "getRaw", "false").lower() == "true"
        for h in self.hooks:
            if h["callbackURL"] == url and h["meetingID"] == meeting:
                return xml_ok("<response><returncode>SUCCESS</returncode><hookID>%d</hookID>"
                              "<messageKey>duplicateWarning</messageKey><message>There is already a hook for "
                              "this callback URL.</message></response>" % h["id"])
        hook = {"id": self.next_id, "callbackURL": url, "meetingID": meeting, "getRaw": raw}
        self.next_id += 1
        self.hooks.append(hook)
        return xml_ok("<response><returncode>SUCCESS</returncode><hookID>%d</hookID><permanentHook>false"
                      "</permanentHook><rawData>%s</rawData></response>" % (hook["id"], b(raw)))

    def _list(self, params):
        meeting = first(params, "meetingID")
        hooks = [h for h in self.hooks if meeting is None or h["meetingID"] in (None, meeting)]
        body = "".join(
            "<hook><hookID>%d</hookID><callbackURL><![CDATA[%s]]></callbackURL>%s<permanentHook>false"
            "</permanentHook><rawData>%s</rawData></hook>"
            % (h["id"], h["callbackURL"],
               "" if h["meetingID"] is None else "<meetingID><![CDATA[%s]]></meetingID>" % h["meetingID"],
               b(h["getRaw"]))
            for h in sorted(hooks, key=lambda h: h["id"]))
        return xml_ok("<response><returncode>SUCCESS</returncode><hooks>%s</hooks></response>" % body)

    def _destroy(self, params):
        hook_id = first(params, "hookID")
        if hook_id is None:
            return webhooks_failure("missingParamHookID", "You must specify a hookID in the parameters.")
        before = len(self.hooks)
        self.hooks = [h for h in self.hooks if str(h["id"]) != hook_id]
        if len(self.hooks) == before:
            return webhooks_failure("destroyMissingHook", "The hook informed was not found.")
        return xml_ok("<response><returncode>SUCCESS</returncode><removed>true</removed></response>")


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

API_PREFIX = "/bigbluebutton/api"
MAX_BODY = 1 << 20


class Handler(BaseHTTPRequestHandler):
    server_version = "bbb-api-emulator"
    sys_version = ""
    timeout = 30  # bounded reads on slow or idle clients

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        self._dispatch(b"")

    def do_POST(self):
        length = _int(self.headers.get("Content-Length"), 0)
        if length > MAX_BODY:
            self._send(413, {"Content-Type": "text/plain"}, b"request body too large\n")
            return
        self._dispatch(self.rfile.read(length) if length > 0 else b"")

    def _dispatch(self, body):
        emu = self.server.emulator
        if isinstance(emu, Webhooks):
            # The real one's routes are GET only (express app.get).
            if self.command != "GET":
                self._send(404, {"Content-Type": "text/plain"}, b"Not Found\n")
            else:
                self._send(*emu.handle(self.path))
            return
        path, _, raw_query = self.path.partition("?")
        # the raw query as bytes on the wire, like HttpServletRequest.getQueryString()
        raw_query = raw_query.encode("latin-1").decode("utf-8", errors="replace")
        params = urllib.parse.parse_qs(raw_query, keep_blank_values=True)
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if body and ctype == "application/x-www-form-urlencoded":
            for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items():
                params.setdefault(k, []).extend(v)
        stripped = path.rstrip("/")
        if stripped == API_PREFIX:
            self._send(*emu.handle("", raw_query, params))
        elif path.startswith(API_PREFIX + "/") and path[len(API_PREFIX) + 1:].strip("/") in API_CALLS:
            self._send(*emu.handle(path[len(API_PREFIX) + 1:].strip("/"), raw_query, params))
        elif stripped == "/emulator/leave":
            self._send(*emu.leave(params))
        elif stripped == "/emulator/breakout-join":
            self._send(*emu.breakout_join(params))
        elif stripped == "/emulator/state":
            self._send(*emu.snapshot())
        elif stripped == "/emulator/reset" and self.command == "POST":
            self._send(*emu.reset())
        elif stripped == urllib.parse.urlsplit(emu.config.html5_url).path.rstrip("/"):
            self._send(200, {"Content-Type": "text/html"},
                       b"<html><body><p>bbb-api-emulator: emulated HTML5 client. The participant was counted "
                       b"when the join API call was accepted.</p></body></html>\n")
        else:
            self._send(404, {"Content-Type": "text/plain"}, b"Not Found\n")

    def _send(self, status, headers, body):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, emulator, quiet=False):
        self.emulator = emulator
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


def build_arg_parser():
    p = argparse.ArgumentParser(description="EMULATOR of the BigBlueButton API (bbb-web) for tests.")
    p.add_argument("--listen", action="append", type=parse_listen,
                   help="ADDRESS:PORT to bind (repeatable; default 127.0.0.1:8090)")
    p.add_argument("--properties", default=DEFAULT_PROPERTIES,
                   help="override file read last (securitySalt, bigbluebutton.web.serverURL, ...)")
    p.add_argument("--defaults", default=DEFAULT_DEFAULTS,
                   help="packaged defaults read first (missing file is fine)")
    p.add_argument("--release-file", default=DEFAULT_RELEASE)
    p.add_argument("--dialplan-dir", default=DEFAULT_DIALPLAN_DIR,
                   help="FreeSWITCH dialplan files whose PIN prompts limit the voice bridge length")
    p.add_argument("--akka-conf", default=DEFAULT_AKKA_CONF,
                   help="bbb-apps-akka.conf whose sharedSecret signs breakout join URLs")
    p.add_argument("--state", help="JSON file of the meetings akka-apps and FreeSWITCH hold: they outlive a "
                   "restart of this process (bbb-web), which then no longer lists them")
    p.add_argument("--end-delay", type=float, default=0.5,
                   help="seconds between an end call and the meeting's disappearance")
    p.add_argument("--quiet", action="store_true", help="no access log")
    p.add_argument("--tls-cert", help="PEM certificate (chain): serve HTTPS, as the real system's nginx does")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    p.add_argument("--webhooks", action="store_true",
                   help="be the bbb-webhooks STAND-IN instead (default --listen 127.0.0.1:3005; configuration "
                   "from /etc/bigbluebutton/bbb-webhooks/ and ./config/, NODE_ENV, SHARED_SECRET)")
    p.add_argument("--webhooks-config-dir", action="append",
                   help="replaces NODE_CONFIG_DIR's directories (repeatable; tests only)")
    return p


def main(argv=None):
    args = build_arg_parser().parse_args(argv)
    listens = args.listen or [("127.0.0.1", 3005 if args.webhooks else 8090)]

    def log(msg):
        sys.stderr.write("%s: %s\n" % (EMULATOR_NAME, msg))
        sys.stderr.flush()

    if args.webhooks:
        return serve(Webhooks(WebhooksConfig(
            args.webhooks_config_dir or [WEBHOOKS_ETC_DIR, os.path.join(os.getcwd(), "config") + "/"],
            os.environ.get("NODE_ENV") or "development")), listens, args, log, "bbb-webhooks STAND-IN")

    emulator = Emulator(lambda: Config(args.defaults, args.properties, args.release_file, args.akka_conf,
                                          args.dialplan_dir),
                        state_file=args.state, end_delay=args.end_delay, log=log)
    if emulator.config.secret == "":
        log("WARNING: securitySalt is empty: checksums are NOT checked (as in bbb-web)")
    return serve(emulator, listens, args, log, "EMULATOR, not BigBlueButton")


def serve(emulator, listens, args, log, what):
    """Serves EMULATOR on LISTENS until SIGTERM or SIGINT; SIGHUP reloads bbb-web's settings."""
    servers = [Server(addr, emulator, quiet=args.quiet) for addr in listens]
    for srv in servers if args.tls_cert else []:
        serve_tls(srv, args.tls_cert, args.tls_key or args.tls_cert)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if hasattr(signal, "SIGHUP") and hasattr(emulator, "reload"):
        signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=emulator.reload, daemon=True).start())
    threads = []
    for srv in servers:
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        t.start()
        threads.append(t)
        host, port = srv.server_address[:2]
        print("%s listening on %s:%d (%s)" % (EMULATOR_NAME, host, port, what), flush=True)
    while not stop.wait(0.5):
        pass
    for srv in servers:
        srv.shutdown()
        srv.server_close()
    for t in threads:
        t.join(timeout=5)
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
