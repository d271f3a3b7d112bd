#!/bin/bash
#
# =============================================================================================
#  LAB STAND-IN for bbb-install.sh (BigBlueButton 3.0, bigbluebutton/bbb-install v3.0.x-release)
#
#  This is NOT the real installer and it installs NO BigBlueButton. It exists so that rollout's
#  end-to-end tests can run the same command line a production pool runs, on Debian 12 lab hosts
#  that have no Internet:
#
#    wget -qO- http://<lab>/bbb-install.sh | bash -s -- -v jammy-300 -s HOST -e MAIL -w -p PROXY
#
#  It accepts the real script's options (getopts "hs:r:c:v:e:p:m:t:xgadwjik"), validates them
#  with the real messages where it matters, and lays down what a real install leaves behind:
#  users, /etc/bigbluebutton/*, the packaged bbb-web defaults, /etc/cron.daily/bigbluebutton,
#  FreeSWITCH config directories, turn-stun-servers.xml, a bbb-conf stand-in, nginx in front of
#  an API EMULATOR running as bbb-web.service, a no-op freeswitch.service, and no-op stand-ins
#  under the real unit names of the other services `bbb-conf --status` lists for BBB 3.0
#  (redis-server, bbb-apps-akka, bbb-fsesl-akka, bbb-webrtc-sfu, bbb-graphql-*, bbb-pads,
#  bbb-export-annotations, etherpad), so that a health check asking systemd sees them all.
#  The optional bbb-webhooks package is NOT installed (as with the real script); the command
#  /usr/local/sbin/lab-standin-install-bbb-webhooks stands in for `apt-get install bbb-webhooks`
#  (its postinst, and a bbb-webhooks.service running the emulator's --webhooks STAND-IN).
#  Re-running it is the "upgrade": operator overrides in /etc/bigbluebutton/bbb-web.properties
#  and /etc/cron.daily/bigbluebutton are kept; the build counter in bigbluebutton-release goes up
#  and the services restart (which ends running meetings, as a real upgrade does).
#
#  Versions and packages, as strictly as the real script: -v must name a repository that
#  exists ("Unable to locate packages for ..." otherwise): the release line jammy-300, which
#  offers the newest lab release, or a per-release repository jammy-300-3.0.N (N in
#  LAB_RELEASES). The script points /etc/apt/sources.list.d/bigbluebutton.list at it and runs a
#  real `apt-get dist-upgrade` and `apt-get install bigbluebutton`, so held packages (apt-mark
#  hold) are kept back exactly as with the real script. The packages are lab stand-ins built on
#  the host with dpkg-deb (bigbluebutton, bbb-config, bbb-web; no BigBlueButton inside);
#  bbb-config ships /etc/bigbluebutton/bigbluebutton-release with its BIGBLUEBUTTON_RELEASE.
#
#  Differences from the real script (deliberate, lab only):
#   - Debian 12 is accepted instead of Ubuntu 22.04, with a loud line saying so.
#   - -s and -e are required (the real script falls back to the IP address without -s).
#   - no Let's Encrypt (certbot) and no TLS: nginx serves plain HTTP on port 80. With -d the
#     /local/certs symlinks are made like the real script does, but not used.
#   - no coturn/haproxy without -c: turn-stun-servers.xml then points at HOST like the real one.
#   - the repositories are local (file:/var/lib/bbb-lab-repo/<-v>, [trusted=yes]) instead of
#     https://ubuntu.bigbluebutton.org/<-v>; -r is accepted but changes nothing. The
#     dist-upgrade and install read only BigBlueButton's repository (the real ones read every
#     source), so the lab's Debian packages are not upgraded by the stand-in.
#   - nginx comes from Debian's apt. If nginx cannot be installed, the API emulator itself also
#     listens on 0.0.0.0:80 (said loudly).
#   - -g (Greenlight), -k (Keycloak) and -t (LTI) are accepted and ignored, loudly.
#
#  The generated, self-contained copy is lab/www/bbb-install.sh (lab/bbb/build-standin embeds
#  lab/bbb/bbb-api-emulator.py into it). Do not edit the generated copy.
# =============================================================================================

# The lab's BigBlueButton releases, oldest first; the release line jammy-300 offers the last.
LAB_RELEASES="3.0.13 3.0.14 3.0.15 3.0.16"
LAB_REPO_ROOT=/var/lib/bbb-lab-repo
EMULATOR_DIR=/usr/local/lib/bbb-emulator
EMULATOR=$EMULATOR_DIR/bbb-api-emulator.py
UNIT_DIR=/usr/lib/systemd/system
BBB_WEB_ETC_CONFIG=/etc/bigbluebutton/bbb-web.properties
BBB_WEB_CONFIG=/usr/share/bbb-web/WEB-INF/classes/bigbluebutton.properties
FS_CONF=/opt/freeswitch/etc/freeswitch
# No-op stand-ins for the BBB 3.0 services besides bbb-web, freeswitch and nginx.
STANDIN_UNITS="redis-server bbb-apps-akka bbb-fsesl-akka bbb-webrtc-sfu bbb-graphql-server bbb-graphql-actions bbb-graphql-middleware bbb-pads bbb-export-annotations etherpad"

usage() {
    set +x
    cat 1>&2 <<HERE

*** LAB STAND-IN: this script lays down files and an API emulator, it installs no BigBlueButton ***

Script for installing a BigBlueButton 3.0 server in under 30 minutes.

This script also checks if your server supports https://docs.bigbluebutton.org/administration/install/#minimum-server-requirements

USAGE:
    wget -qO- https://raw.githubusercontent.com/bigbluebutton/bbb-install/v3.0.x-release/bbb-install.sh | bash -s -- [OPTIONS]

OPTIONS (install BigBlueButton):

  -v <version>           Install given version of BigBlueButton (e.g. 'jammy-300') (required)

  -s <hostname>          Configure server with <hostname>
  -e <email>             Email for Let's Encrypt certbot

  -x                     Use Let's Encrypt certbot with manual DNS challenges

  -g                     Install Greenlight version 3
  -k                     Install Keycloak version 20

  -t <key>:<secret>      Install BigBlueButton LTI framework tools and add/update LTI consumer credentials <key>:<secret>

  -c <hostname>:<secret> Configure with external coturn server at <hostname> using <secret> (instead of built-in TURN server)

  -m <link_path>         Create a Symbolic link from /var/bigbluebutton to <link_path>

  -p <host>[:<port>]     Use apt-get proxy at <host> (default port 3142)
  -r <host>              Use alternative apt repository (such as packages-eu.bigbluebutton.org)

  -d                     Skip SSL certificates request (use provided certificates from mounted volume) in /local/certs/
  -w                     Install UFW firewall (recommended)

  -j                     Allows the installation of BigBlueButton to proceed even if not all requirements [for production use] are met.
                         Note that not all requirements can be ignored. This is useful in development / testing / ci scenarios.

  -i                     Allows the installation of BigBlueButton to proceed even if Apache webserver is installed.

  -h                     Print help

EXAMPLES:

Sample options for setup a BigBlueButton 3.0 server

    -v jammy-300 -s bbb.example.com -e info@example.com

HERE
}

say() {
  echo "bbb-install: $1"
}

err() {
  say "$1" >&2
  exit 1
}

usage_err() {
  say "$1" >&2
  usage
  exit 1
}

lab() {
  echo "bbb-install: *** LAB STAND-IN: $1 ***"
}

main() {
  export DEBIAN_FRONTEND=noninteractive
  PACKAGE_REPOSITORY=ubuntu.bigbluebutton.org

  need_x64

  while builtin getopts "hs:r:c:v:e:p:m:t:xgadwjik" opt "${@}"; do

    case $opt in
      h)
        usage
        exit 0
        ;;
      s)
        HOST=$OPTARG
        if [ "$HOST" == "bbb.example.com" ]; then
          err "You must specify a valid hostname (not the hostname given in the docs)."
        fi
        ;;
      r)
        PACKAGE_REPOSITORY=$OPTARG
        ;;
      e)
        EMAIL=$OPTARG
        if [ "$EMAIL" == "info@example.com" ]; then
          err "You must specify a valid email address (not the email in the docs)."
        fi
        ;;
      x)
        MANUAL_DNS_CHALLENGE=true
        ;;
      c)
        COTURN=$OPTARG
        check_coturn "$COTURN"
        ;;
      v)
        VERSION=$OPTARG
        ;;
      p)
        PROXY=$OPTARG
        if [ -n "$PROXY" ]; then
          if [[ "$PROXY" =~ : ]]; then
            echo "Acquire::http::Proxy \"http://$PROXY\";"  > /etc/apt/apt.conf.d/01proxy
          else
            echo "Acquire::http::Proxy \"http://$PROXY:3142\";"  > /etc/apt/apt.conf.d/01proxy
          fi
        fi
        ;;
      g)
        GREENLIGHT=true
        ;;
      k)
        INSTALL_KC=true
        ;;
      t)
        LTI_CREDS_STR=$OPTARG
        if [ "$LTI_CREDS_STR" == "MY_KEY:MY_SECRET" ]; then
          err "You must use a valid complex credentials for your LTI setup (not the ones in the example)."
        fi
        if [[ ! $LTI_CREDS_STR == *:* ]]; then
          err "You must respect the format <key>:<secret> when specifying your LTI credentials."
        fi
        ;;
      a)
        err "Error: bbb-demo (API demos, '-a' option) were deprecated in BigBlueButton 2.6. Please use Greenlight or API MATE"
        ;;
      m)
        LINK_PATH=$OPTARG
        ;;
      d)
        PROVIDED_CERTIFICATE=true
        ;;
      w)
        SSH_PORT=$(grep Port /etc/ssh/ssh_config 2>/dev/null | grep -v \# | sed 's/[^0-9]*//g')
        if [[ -n "$SSH_PORT" && "$SSH_PORT" != "22" ]]; then
          err "Detected sshd not listening to standard port 22 -- unable to install default UFW firewall rules."
        fi
        UFW=true
        ;;
      j)
        SKIP_MIN_SERVER_REQUIREMENTS_CHECK=true
        ;;
      i)
        SKIP_APACHE_INSTALLED_CHECK=true
        ;;
      :)
        err "Missing option argument for -$OPTARG"
        ;;
      \?)
        usage_err "Invalid option: -$OPTARG" >&2
        ;;
    esac
  done

  if [ -n "$VERSION" ]; then
    check_version "$VERSION"
  fi

  if [ "$SKIP_APACHE_INSTALLED_CHECK" != true ]; then
    check_apache2
  fi

  if [ -z "$VERSION" ] && [ -n "$COTURN" ]; then
    if [ -z "$EMAIL" ]; then err "Installing coturn needs an e-mail address for Let's Encrypt"; fi
    err "lab stand-in: installing a standalone coturn server (-c without -v) is not emulated."
  fi

  if [ -z "$VERSION" ]; then
    usage
    exit 0
  fi

  if [ -n "$INSTALL_KC" ] && [ -z "$GREENLIGHT" ]; then
    err "Keycloak cannot be installed without Greenlight."
  fi

  if [ -z "$HOST" ]; then err "lab stand-in: -s <hostname> is required."; fi
  if [ -z "$EMAIL" ]; then err "lab stand-in: -e <email> is required."; fi

  check_os
  check_mem
  check_cpus
  check_ipv6

  if [ -n "$GREENLIGHT" ] || [ -n "$INSTALL_KC" ] || [ -n "$LTI_CREDS_STR" ]; then
    lab "Greenlight (-g), Keycloak (-k) and LTI (-t) are not emulated; ignoring them"
  fi

  install_nginx
  install_bbb_packages
  create_users
  install_bbb_files
  install_emulator
  install_bbb_conf
  install_units
  install_webhooks_standin

  if [ -n "$LINK_PATH" ]; then
    ln -s "$LINK_PATH" "/var/bigbluebutton"
  fi

  install_ssl

  if [ -n "$COTURN" ]; then
    configure_coturn
  else
    lab "no local coturn/haproxy in the lab; turn-stun-servers.xml points at $HOST as the real script's would"
    COTURN_HOST=$HOST
    COTURN_SECRET=$(local_turn_secret)
    configure_coturn
  fi

  if [ -n "$UFW" ]; then
    setup_ufw
  fi

  configure_nginx

  bbb-conf --setip "$HOST" </dev/null

  bbb-conf --check </dev/null
}

need_x64() {
  UNAME=$(uname -m)
  if [ "$UNAME" != "x86_64" ]; then err "You must run this command on a 64-bit server."; fi
}

check_root() {
  if [ $EUID != 0 ]; then err "You must run this command as root."; fi
}

check_version() {
  if ! echo "$1" | grep -Eq "jammy-30"; then err "This script can only install BigBlueButton 3.0 and is meant to be run on Ubuntu 22.04 (jammy) server."; fi
  DISTRO=${1%%-*}
  local release
  if ! release=$(lab_release_of "$1"); then
    err "Unable to locate packages for $1 at $PACKAGE_REPOSITORY."
  fi
  check_root
  lab_build_repositories
  lab "packages for $1 (BigBlueButton $release) come from the lab repository file:$LAB_REPO_ROOT/$1, not https://$PACKAGE_REPOSITORY/$1"
  echo "deb [trusted=yes] file:$LAB_REPO_ROOT/$1 bigbluebutton-$DISTRO main" > /etc/apt/sources.list.d/bigbluebutton.list
}

# The release a lab repository offers: the newest for the line jammy-300, N for jammy-300-N.
lab_release_of() {
  local r
  case "$1" in
    jammy-300) echo "${LAB_RELEASES##* }"; return 0 ;;
    jammy-300-*)
      for r in $LAB_RELEASES; do
        if [ "$1" == "jammy-300-$r" ]; then echo "$r"; return 0; fi
      done ;;
  esac
  return 1
}

# One stand-in package: $1 work dir, $2 name, $3 release, $4 Depends ("" for none).
lab_deb() {
  local root=$1/$2-$3
  mkdir -p "$root/DEBIAN"
  {
    echo "Package: $2"
    echo "Version: 1:$3-1"
    echo "Architecture: all"
    echo "Maintainer: rollout lab <lab@rollout.invalid>"
    if [ -n "$4" ]; then echo "Depends: $4"; fi
    echo "Description: LAB STAND-IN for BigBlueButton's $2 $3 (contains no BigBlueButton)"
  } > "$root/DEBIAN/control"
  if [ "$2" == "bbb-config" ]; then
    mkdir -p "$root/etc/bigbluebutton"
    echo "BIGBLUEBUTTON_RELEASE=$3" > "$root/etc/bigbluebutton/bigbluebutton-release"
  else
    mkdir -p "$root/usr/share/doc/$2"
    echo "LAB STAND-IN $2 $3" > "$root/usr/share/doc/$2/release"
  fi
  dpkg-deb --root-owner-group -Zgzip --build "$root" "$5/${2}_$3-1_all.deb" >/dev/null \
    || err "lab stand-in: dpkg-deb could not build $2 $3"
}

# An apt repository in the layout of ubuntu.bigbluebutton.org/<name> (suite
# bigbluebutton-jammy, component main): $1 name, $2 the release it offers.
lab_build_repository() {
  local dir=$LAB_REPO_ROOT/$1 suite=bigbluebutton-jammy work deb index
  if [ -f "$dir/dists/$suite/Release" ]; then return 0; fi
  work=$(mktemp -d)
  index=$dir/dists/$suite/main/binary-amd64
  mkdir -p "$dir/pool" "$index"
  lab_deb "$work" bbb-config "$2" "" "$dir/pool"
  lab_deb "$work" bbb-web "$2" "" "$dir/pool"
  lab_deb "$work" bigbluebutton "$2" "bbb-config (= 1:$2-1), bbb-web (= 1:$2-1)" "$dir/pool"
  rm -rf "$work"
  for deb in "$dir"/pool/*.deb; do
    dpkg-deb -f "$deb"
    echo "Filename: pool/$(basename "$deb")"
    echo "Size: $(stat -c %s "$deb")"
    echo "SHA256: $(sha256sum "$deb" | cut -d' ' -f1)"
    echo
  done > "$index/Packages"
  {
    echo "Origin: rollout lab"
    echo "Label: LAB STAND-IN for $1"
    echo "Suite: $suite"
    echo "Codename: $suite"
    echo "Date: $(LC_ALL=C date -Ru)"
    echo "Architectures: amd64"
    echo "Components: main"
    echo "SHA256:"
    echo " $(sha256sum "$index/Packages" | cut -d' ' -f1) $(stat -c %s "$index/Packages") main/binary-amd64/Packages"
  } > "$dir/dists/$suite/Release.new"
  mv "$dir/dists/$suite/Release.new" "$dir/dists/$suite/Release"
}

lab_build_repositories() {
  local r
  for r in $LAB_RELEASES; do lab_build_repository "jammy-300-$r" "$r"; done
  lab_build_repository jammy-300 "${LAB_RELEASES##* }"
}

# As the real main(): apt-get update, apt-get dist-upgrade, then install bigbluebutton when it
# is missing (need_pkg). Only BigBlueButton's repository is read (see the header).
install_bbb_packages() {
  local only_bbb=(-o Dir::Etc::SourceList=/etc/apt/sources.list.d/bigbluebutton.list
                  -o Dir::Etc::SourceParts="$LAB_REPO_ROOT/no-sources.d" -o APT::Get::List-Cleanup=0)
  mkdir -p "$LAB_REPO_ROOT/no-sources.d"
  apt-get "${only_bbb[@]}" update </dev/null || err "lab stand-in: apt-get update of BigBlueButton's repository failed"
  apt-get "${only_bbb[@]}" -y -o Dpkg::Options::="--force-confdef" -o Dpkg::Options::="--force-confnew" dist-upgrade </dev/null \
    || err "lab stand-in: apt-get dist-upgrade failed"
  if ! dpkg -s bigbluebutton >/dev/null 2>&1; then
    LC_CTYPE=C.UTF-8 apt-get "${only_bbb[@]}" install -yq bigbluebutton </dev/null || err "lab stand-in: installing bigbluebutton failed"
  fi
}

check_os() {
  local id version_id pretty
  id=$(. /etc/os-release 2>/dev/null && echo "$ID")
  version_id=$(. /etc/os-release 2>/dev/null && echo "$VERSION_ID")
  pretty=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")
  if [ "$id" == "ubuntu" ] && [ "$version_id" == "22.04" ]; then
    lab "running on Ubuntu 22.04, but still only laying down lab files"
  elif [ "$id" == "debian" ]; then
    echo
    lab "this host runs ${pretty:-Debian}; the real bbb-install.sh needs Ubuntu 22.04 (jammy) and would install BigBlueButton 3.0 packages. This stand-in installs NO BigBlueButton"
    echo
  else
    err "You must run this command on Ubuntu 22.04 server (or, for the lab stand-in, Debian)."
  fi
}

check_mem() {
  if awk '$1~/MemTotal/ {exit !($2<3940000)}' /proc/meminfo; then
    echo "Your server should have (at least) 4 GB of memory."
    if [ "$SKIP_MIN_SERVER_REQUIREMENTS_CHECK" != true ]; then
      exit 1
    fi
  fi
}

check_ipv6() {
  if [ ! -f /proc/net/if_inet6 ]; then
    echo "Your server does not support IPv6"
    if [ "$SKIP_MIN_SERVER_REQUIREMENTS_CHECK" != true ]; then
      exit 1
    fi
  fi
}

check_cpus() {
  if [ "$(nproc --all)" -lt 4 ]; then
    echo "Your server needs to have (at least) 4 CPU cores (8 CPU cores recommended for production)."
    if [ "$SKIP_MIN_SERVER_REQUIREMENTS_CHECK" != true ]; then
      exit 1
    fi
  fi
}

check_coturn() {
  if ! echo "$1" | grep -q ':'; then err "Option for coturn must be <hostname>:<secret>"; fi

  COTURN_HOST=$(echo "$OPTARG" | cut -d':' -f1)
  COTURN_SECRET=$(echo "$OPTARG" | cut -d':' -f2)

  if [ -z "$COTURN_HOST" ];   then err "-c option must contain <hostname>"; fi
  if [ -z "$COTURN_SECRET" ]; then err "-c option must contain <secret>"; fi

  if [ "$COTURN_HOST" == "turn.example.com" ]; then
    err "You must specify a valid hostname (not the example given in the docs)"
  fi
  if [ "$COTURN_SECRET" == "1234abcd" ]; then
    err "You must specify a new password (not the example given in the docs)."
  fi
}

check_apache2() {
  if dpkg -l 2>/dev/null | grep -q apache2-bin; then
    echo "You must uninstall the Apache2 server first"
    if [ "$SKIP_APACHE_INSTALLED_CHECK" != true ]; then
      exit 1
    fi
  fi
}

install_nginx() {
  NGINX=false
  if dpkg -s nginx >/dev/null 2>&1; then
    NGINX=true
    return 0
  fi
  say "installing nginx with apt-get (the only real package the lab stand-in installs)"
  if apt-get -o Acquire::http::Timeout=30 -o Acquire::Retries=1 update </dev/null \
     && LC_CTYPE=C.UTF-8 apt-get -o Acquire::http::Timeout=30 install -yq nginx </dev/null; then
    NGINX=true
  else
    echo
    lab "nginx could NOT be installed (apt proxy given with -p?). FALLBACK: the API emulator itself listens on 0.0.0.0:80"
    echo
  fi
}

# The system accounts the packages create before the files that need them: the group and
# user bigbluebutton (bbb-record-core's preinst: addGroup/addUser bigbluebutton), which
# bbb-web and akka-apps run as and whose group may read the files holding the secret.
create_users() {
  getent group bigbluebutton >/dev/null || groupadd --system bigbluebutton
  id -u bigbluebutton >/dev/null 2>&1 || useradd --system --gid bigbluebutton --home-dir /home/bigbluebutton \
    --no-create-home --shell /usr/sbin/nologin bigbluebutton
  id -u freeswitch >/dev/null 2>&1 || useradd --system --gid daemon --home-dir /opt/freeswitch \
    --no-create-home --shell /usr/sbin/nologin freeswitch
}

random_hex() {
  od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'
}

install_bbb_files() {
  mkdir -p /etc/bigbluebutton/bbb-conf "$(dirname "$BBB_WEB_CONFIG")" /var/log/bigbluebutton \
    /usr/share/bigbluebutton/nginx
  mkdir -p /var/bigbluebutton
  chown bigbluebutton:bigbluebutton /var/bigbluebutton /var/log/bigbluebutton

  # Packaged defaults (bbb-web owns this file; an upgrade replaces it).
  cat > "$BBB_WEB_CONFIG" <<'HERE'
#
# LAB STAND-IN: a subset of the defaults shipped in
# bigbluebutton-web/grails-app/conf/bigbluebutton.properties (BigBlueButton 3.0).
# Put local changes in /etc/bigbluebutton/bbb-web.properties, as with the real bbb-web.
#

# Default loglevel.
appLogLevel=DEBUG

presentationDir=/var/bigbluebutton

# Default number of digits for voice conference users joining through the PSTN.
defaultNumDigitsForTelVoice=5

# Default dial access number
defaultDialAccessNumber=613-555-1234

# Default Guest Policy
# Valid values are ALWAYS_ACCEPT, ALWAYS_DENY, ASK_MODERATOR
defaultGuestPolicy=ALWAYS_ACCEPT

# Enables or disables authenticated guest
authenticatedGuest=true

defaultMeetingLayout=CUSTOM_LAYOUT

defaultWelcomeMessage=Welcome to <b>%%CONFNAME%%</b>!<br><br>For help on using BigBlueButton see these (short) <a href="https://bigbluebutton.org/teachers/tutorials/"><u>tutorial videos</u></a>.<br><br>To join the audio bridge click the speaker button.  Use a headset to avoid causing background noise for others.
defaultWelcomeMessageFooter=This server is running <a href="https://bigbluebutton.org/" target="_blank"><u>BigBlueButton</u></a>.

# Default maximum number of users a meeting can have.
defaultMaxUsers=0

# Default duration of the meeting in minutes.
defaultMeetingDuration=0

# End meeting if no user joined within a period of time after meeting created.
meetingExpireIfNoUserJoinedInMinutes=5

# Number of minutes to end meeting when the last user left.
meetingExpireWhenLastUserLeftInMinutes=1

# Disable recording by default.
#   true - don't record even if record param in the api call is set to record
#   false - when record param is passed from api, override this default
disableRecordingDefault=false

# Start recording when first user joins the meeting.
autoStartRecording=false

# Allow the user to start/stop recording.
allowStartStopRecording=true

recordFullDurationMedia=false

learningDashboardCleanupDelayInMinutes=2

# Saves meeting events even if the meeting is not recorded
defaultKeepEvents=false

bigbluebutton.web.serverURL=http://bigbluebutton.example.com

bigbluebutton.web.logoutURL=default

defaultHTML5ClientUrl=${bigbluebutton.web.serverURL}/html5client/join

apiVersion=2.0

# Salt which is used by 3rd-party apps to authenticate api calls
securitySalt=330a8b08c3b4c61533e1d0c5ce1ac88f

# List of supported hash algorithms for validating checksums (comma-separated)
# Available options: sha1, sha256, sha384, sha512
supportedChecksumAlgorithms=sha1,sha256,sha384,sha512

breakoutRoomsRecord=false

# List of features to disable (comma-separated)
disabledFeatures=

# Notify users that recording is on
notifyRecordingIsOn=false

# Allow endpoint with current BigBlueButton version
allowRevealOfBBBVersion=false

serviceEnabled = true
HERE

  # Local overrides: created once, never rewritten (bbb-conf --setip only edits the URL line).
  if [ ! -f "$BBB_WEB_ETC_CONFIG" ]; then
    {
      echo "securitySalt=$(random_hex 20)"
      echo "bigbluebutton.web.serverURL=https://$HOST"
    } > "$BBB_WEB_ETC_CONFIG"
  fi
  chown root:bigbluebutton "$BBB_WEB_ETC_CONFIG"
  chmod 640 "$BBB_WEB_ETC_CONFIG"

  # akka-apps' override file, as the bbb-apps-akka package's preinst writes it on a fresh
  # install ("changeme"); bbb-conf --setip below puts securitySalt into it. The API emulator
  # signs breakout join URLs with this sharedSecret, as akka-apps does, and reads it as
  # bigbluebutton, the user akka-apps runs as. dpkg runs the preinst as root under umask 022
  # (its standard_startup), so the file is 0644 root:root whatever the caller's umask: every
  # local user can read the secret until the bbb role closes the file. The preinst writes it
  # only when it is missing, and the --setip `sed -i` keeps its owner and mode.
  if [ ! -f /etc/bigbluebutton/bbb-apps-akka.conf ]; then
    (umask 022; cat > /etc/bigbluebutton/bbb-apps-akka.conf) <<'HERE'
// include default config from upstream
include "/usr/share/bbb-apps-akka/conf/application.conf"

// you can customize everything here. API endpoint and secret have to be changed
// This file will not be overridden by packages

services {
  bbbWebAPI="https://192.168.23.33/bigbluebutton/api"
  sharedSecret="changeme"
}
HERE
  fi

  # Release file (from the bbb-config package): the release the installed packages are, and a
  # build counter of the stand-in's own (kept beside its repositories) that makes every run
  # of the script visible.
  local build=0 release
  release=$(sed -n 's/^BIGBLUEBUTTON_RELEASE=//p' /etc/bigbluebutton/bigbluebutton-release 2>/dev/null)
  if [ -z "$release" ]; then err "lab stand-in: bbb-config left no BIGBLUEBUTTON_RELEASE in /etc/bigbluebutton/bigbluebutton-release"; fi
  if [ -f "$LAB_REPO_ROOT/build" ]; then build=$(cat "$LAB_REPO_ROOT/build"); fi
  build=$(( ${build:-0} + 1 ))
  echo "$build" > "$LAB_REPO_ROOT/build"
  {
    echo "BIGBLUEBUTTON_RELEASE=$release"
    echo "BBB_LAB_BUILD=$build"
  } > /etc/bigbluebutton/bigbluebutton-release
  say "BigBlueButton $release (lab stand-in packages), lab build $build"

  # Helper library sourced by apply-config.sh (from bigbluebutton-config; a package file).
  cat > /etc/bigbluebutton/bbb-conf/apply-lib.sh <<'HERE'
#!/bin/bash
# LAB STAND-IN for /etc/bigbluebutton/bbb-conf/apply-lib.sh (bigbluebutton-config).
# Only enableUFWRules is provided.

enableUFWRules() {
  if ! command -v ufw >/dev/null 2>&1; then
    echo "  - lab stand-in: ufw is not installed, no firewall rules applied"
    return 0
  fi
  echo "  - Enable Firewall and opening 22/tcp, 80/tcp, 443/tcp and 16384:32768/udp"
  ufw allow OpenSSH
  ufw allow "Nginx Full"
  ufw allow 16384:32768/udp
  ufw --force enable
}
HERE
  chmod 644 /etc/bigbluebutton/bbb-conf/apply-lib.sh

  # Retention settings: a conffile, so local edits survive re-runs.
  if [ ! -f /etc/cron.daily/bigbluebutton ]; then
    mkdir -p /etc/cron.daily
    cat > /etc/cron.daily/bigbluebutton <<'HERE'
#!/bin/bash
#
# LAB STAND-IN for /etc/cron.daily/bigbluebutton (bigbluebutton-config): the same retention
# variables as the real file; the clean-up only touches what the lab stand-in creates.
#

test -x /var/bigbluebutton || exit 0

#
# How N days back to keep files
#
history=5
unrecorded_days=14
published_days=14
log_history=28

# Local overrides, as the real script reads them (BBB docs: configuration-files).
if [ -f /etc/default/bigbluebutton-cron-config ]; then
  . /etc/default/bigbluebutton-cron-config
fi

#
# Delete presentations older than N days
#
find /var/bigbluebutton/ -maxdepth 1 -type d -name "*-*" -mtime +$history -exec rm -rf '{}' +

#
# Delete old logs
#
find /var/log/bigbluebutton/ -type f -mtime +$log_history -delete
HERE
    chmod 755 /etc/cron.daily/bigbluebutton
  fi

  # FreeSWITCH configuration tree (/opt/freeswitch/conf is the path the docs use).
  mkdir -p "$FS_CONF/sip_profiles/external" "$FS_CONF/dialplan/public" "$FS_CONF/autoload_configs" \
    /var/freeswitch/meetings
  if [ ! -e /opt/freeswitch/conf ]; then
    ln -s "$FS_CONF" /opt/freeswitch/conf
  fi
  chown -R freeswitch:daemon /opt/freeswitch/etc /var/freeswitch
}

install_emulator() {
  mkdir -p "$EMULATOR_DIR"
  cat > "$EMULATOR.new" <<'BBB_API_EMULATOR_PY'
@@BBB_API_EMULATOR_PY@@
BBB_API_EMULATOR_PY
  if [ "$(head -c 22 "$EMULATOR.new")" == "@@BBB_API_EMULATOR_PY@" ]; then
    # Unbuilt source copy (lab/bbb/bbb-install.sh run directly): take the emulator beside it.
    local here
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" 2>/dev/null && pwd)
    if [ -n "$here" ] && [ -f "$here/bbb-api-emulator.py" ]; then
      cp "$here/bbb-api-emulator.py" "$EMULATOR.new"
    else
      rm -f "$EMULATOR.new"
      err "lab stand-in: the emulator is not embedded; serve lab/www/bbb-install.sh (made by lab/bbb/build-standin)."
    fi
  fi
  chmod 755 "$EMULATOR.new"
  mv "$EMULATOR.new" "$EMULATOR"
  say "installed $EMULATOR (sha256 $(sha256sum "$EMULATOR" | cut -d' ' -f1))"
}

install_units() {
  if ! command -v systemctl >/dev/null 2>&1; then
    err "lab stand-in: systemd is required to run bbb-web.service"
  fi
  cat > "$UNIT_DIR/bbb-web.service" <<HERE
[Unit]
Description=BigBlueButton Web Application - LAB EMULATOR (bbb-api-emulator.py), not the real bbb-web
After=network.target
PartOf=bigbluebutton.target

[Service]
Type=simple
User=bigbluebutton
Group=bigbluebutton
ExecStart=/usr/bin/python3 $EMULATOR --listen 127.0.0.1:8090 --properties $BBB_WEB_ETC_CONFIG --defaults $BBB_WEB_CONFIG
ExecReload=/bin/kill -HUP \$MAINPID
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target bigbluebutton.target
HERE

  cat > "$UNIT_DIR/freeswitch.service" <<'HERE'
[Unit]
Description=FreeSWITCH - LAB STAND-IN (a no-op process), not the real FreeSWITCH
After=network.target
PartOf=bigbluebutton.target

[Service]
Type=simple
User=freeswitch
Group=daemon
ExecStart=/bin/sleep infinity
Restart=on-failure

[Install]
WantedBy=multi-user.target bigbluebutton.target
HERE

  # The other services `bbb-conf --status` lists on a BBB 3.0 node, as no-op stand-ins under
  # their real unit names: rollout's health gate asks systemd for each of them, and a test
  # stops one (`systemctl stop bbb-webrtc-sfu`) to see the node kept out of the pool.
  local unit
  for unit in $STANDIN_UNITS; do
    cat > "$UNIT_DIR/$unit.service" <<HERE
[Unit]
Description=$unit - LAB STAND-IN (a no-op process), not the real $unit
After=network.target
PartOf=bigbluebutton.target

[Service]
Type=simple
ExecStart=/bin/sleep infinity
Restart=on-failure

[Install]
WantedBy=multi-user.target bigbluebutton.target
HERE
  done
  # bbb-conf checks etherpad by this file, which the bbb-etherpad package installs.
  mkdir -p /usr/share/etherpad-lite
  [ -f /usr/share/etherpad-lite/settings.json ] \
    || echo '{"title": "LAB STAND-IN: no Etherpad here"}' > /usr/share/etherpad-lite/settings.json

  cat > "$UNIT_DIR/bigbluebutton.target" <<HERE
[Unit]
Description=BigBlueButton - LAB STAND-IN
Wants=bbb-web.service freeswitch.service $(for unit in $STANDIN_UNITS; do printf '%s.service ' "$unit"; done)

[Install]
WantedBy=multi-user.target
HERE

  local dropin=/etc/systemd/system/bbb-web.service.d/lab-standin-no-nginx.conf
  if [ "$NGINX" == true ]; then
    rm -f "$dropin"
  else
    mkdir -p "$(dirname "$dropin")"
    cat > "$dropin" <<HERE
# LAB STAND-IN fallback: nginx could not be installed, so the emulator also serves port 80.
[Service]
ExecStart=
ExecStart=/usr/bin/python3 $EMULATOR --listen 127.0.0.1:8090 --listen 0.0.0.0:80 --properties $BBB_WEB_ETC_CONFIG --defaults $BBB_WEB_CONFIG
AmbientCapabilities=CAP_NET_BIND_SERVICE
HERE
  fi

  systemctl daemon-reload </dev/null
  # shellcheck disable=SC2086
  systemctl enable bigbluebutton.target bbb-web.service freeswitch.service $STANDIN_UNITS </dev/null >/dev/null 2>&1 \
    || err "lab stand-in: could not enable the BigBlueButton units"
}

# LAB STAND-IN for `apt-get install bbb-webhooks` (an optional package the real script does not
# install either): what its postinst, build/packages-template/bbb-webhooks/after-install.sh (v3),
# does on every install and upgrade -- the packaged config/default.yml copied from
# default.example.yml (0644, bigbluebutton:bigbluebutton) with bbb.sharedSecret set to
# `bbb-conf --secret` -- and the unit under its real name, running the emulator's --webhooks
# stand-in (as strict as bbb-webhooks 3.x about the checksum; see the emulator's text).
install_webhooks_standin() {
  cat > /usr/local/sbin/lab-standin-install-bbb-webhooks <<WEBHOOKS
#!/bin/bash
# LAB STAND-IN for \`apt-get install bbb-webhooks\` (written by the lab's stand-in bbb-install.sh).
set -e
DIR=/usr/local/bigbluebutton/bbb-webhooks
TARGET=\$DIR/config/default.yml
mkdir -p "\$DIR/config"
cat > "\$DIR/config/default.example.yml" <<'HERE'
# LAB STAND-IN: the keys of bbb-webhooks 3.x config/default.example.yml that matter here.
log:
  level: info

# Shared secret of your BigBlueButton server.
bbb:
  serverDomain: myserver.com
  sharedSecret: mysharedsecret
  # Whether to use Auth2.0 or not, Auth2.0 sends the sharedSecret whithin an Authorization header as a bearer
  auth2_0: false
  apiPath: /bigbluebutton/api

modules:
  ../out/webhooks/index.js:
    enabled: true
    type: out
    config:
      api:
        bind: 127.0.0.1
        port: 3005
        supportedChecksumAlgorithms:
          - sha1
          - sha256
          - sha384
          - sha512
HERE
# after-install.sh: cp, chmod 644, chown, then yq e -i ".bbb.sharedSecret = \"\$BBB_SECRET\"".
cp "\$DIR/config/default.example.yml" "\$TARGET"
chmod 644 "\$TARGET"
chown bigbluebutton:bigbluebutton "\$TARGET"
BBB_SECRET=\$(bbb-conf --secret | sed -n 's/^[[:space:]]*Secret: //p')
V=\$BBB_SECRET awk '/^[^ \t#]/ { inbbb = (\$0 ~ /^bbb:/) }
  inbbb && /^[ \t]+sharedSecret:/ { print "  sharedSecret: " ENVIRON["V"]; next } { print }' "\$TARGET" > "\$TARGET.new"
cat "\$TARGET.new" > "\$TARGET"
rm -f "\$TARGET.new"
cat > $UNIT_DIR/bbb-webhooks.service <<HERE
[Unit]
Description=BigBlueButton Webhooks - LAB STAND-IN (bbb-api-emulator.py --webhooks), not the real bbb-webhooks
Wants=redis-server.service
After=redis-server.service

[Service]
WorkingDirectory=\$DIR
ExecStart=/usr/bin/python3 $EMULATOR --webhooks --listen 127.0.0.1:3005
Restart=always
User=bigbluebutton
Group=bigbluebutton
Environment=NODE_ENV=production

[Install]
WantedBy=multi-user.target bigbluebutton.target
HERE
systemctl daemon-reload
systemctl enable bbb-webhooks.service >/dev/null 2>&1
systemctl restart bbb-webhooks.service
echo "LAB STAND-IN bbb-webhooks installed: \$TARGET, bbb-webhooks.service on 127.0.0.1:3005"
WEBHOOKS
  chmod 755 /usr/local/sbin/lab-standin-install-bbb-webhooks
}

install_ssl() {
  if [ -n "$PROVIDED_CERTIFICATE" ]; then
    if [ ! -f "/etc/letsencrypt/live/$HOST/fullchain.pem" ]; then
      mkdir -p "/etc/letsencrypt/live/$HOST/"
      ln -sf /local/certs/fullchain.pem "/etc/letsencrypt/live/$HOST/fullchain.pem"
      ln -sf /local/certs/privkey.pem "/etc/letsencrypt/live/$HOST/privkey.pem"
    fi
    lab "-d: /local/certs linked like the real script does, but the API is plain HTTP on port 80 in the lab"
  else
    lab "no Let's Encrypt in the lab: certbot skipped${MANUAL_DNS_CHALLENGE:+ (-x ignored)}, the API is plain HTTP on port 80"
  fi
}

local_turn_secret() {
  local f=/etc/bigbluebutton/lab-standin-local-turn.secret
  if [ ! -s "$f" ]; then
    random_hex 16 > "$f"
    chmod 600 "$f"
  fi
  cat "$f"
}

configure_coturn() {
  TURN_XML=/etc/bigbluebutton/turn-stun-servers.xml

  if [ -z "$COTURN" ] && [ -z "$COTURN_HOST" ]; then
    # the user didn't pass '-c', so use the local TURN server's host
    COTURN_HOST=$HOST
  fi

  cat <<HERE > $TURN_XML
<?xml version="1.0" encoding="UTF-8"?>
<beans xmlns="http://www.springframework.org/schema/beans"
        xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
        xsi:schemaLocation="http://www.springframework.org/schema/beans
        http://www.springframework.org/schema/beans/spring-beans-2.5.xsd">

    <!--
         We need turn0 for FireFox to workaround its limited ICE implementation.
         This is UDP connection.  Note that port 3478 must be open on this BigBlueButton
         and reachable by the client.

         Also, in 2.5, we previously defined turn:\$HOST:443?transport=tcp (not 'turns')
         to workaround a bug in Safari's handling of Let's Encrypt. This bug is now fixed
         https://bugs.webkit.org/show_bug.cgi?id=219274, so we omit the 'turn' protocol over
         port 443.
     -->
    <bean id="turn0" class="org.bigbluebutton.web.services.turn.TurnServer">
        <constructor-arg index="0" value="$COTURN_SECRET"/>
        <constructor-arg index="1" value="turn:$COTURN_HOST:3478"/>
        <constructor-arg index="2" value="86400"/>
    </bean>
    <bean id="turn1" class="org.bigbluebutton.web.services.turn.TurnServer">
        <constructor-arg index="0" value="$COTURN_SECRET"/>
        <constructor-arg index="1" value="turns:$COTURN_HOST:443?transport=tcp"/>
        <constructor-arg index="2" value="86400"/>
    </bean>

    <bean id="stunTurnService"
            class="org.bigbluebutton.web.services.turn.StunTurnService">
        <property name="stunServers">
            <set>
            </set>
        </property>
        <property name="turnServers">
            <set>
                <ref bean="turn0"/>
                <ref bean="turn1"/>
            </set>
        </property>
    </bean>
</beans>
HERE

  chown root:bigbluebutton "$TURN_XML"
  chmod 640 "$TURN_XML"
}

setup_ufw() {
  if [ ! -f /etc/bigbluebutton/bbb-conf/apply-config.sh ]; then
    cat > /etc/bigbluebutton/bbb-conf/apply-config.sh << HERE
#!/bin/bash

# Pull in the helper functions for configuring BigBlueButton
source /etc/bigbluebutton/bbb-conf/apply-lib.sh

enableUFWRules
HERE
  chmod +x /etc/bigbluebutton/bbb-conf/apply-config.sh
  fi
}

configure_nginx() {
  cat > /usr/share/bigbluebutton/nginx/web.nginx <<'HERE'
# LAB STAND-IN: bbb-web (here: the API emulator) behind nginx, as in a real install.
location /bigbluebutton/api {
  proxy_pass         http://127.0.0.1:8090;
  proxy_redirect     default;
  proxy_set_header   X-Forwarded-For $proxy_add_x_forwarded_for;
  proxy_set_header   X-Forwarded-Proto $scheme;
  proxy_set_header   Host $host;
}

location /html5client/ {
  proxy_pass         http://127.0.0.1:8090;
}

# Emulator-only endpoints (NOT part of BigBlueButton): /emulator/leave, /emulator/state, /emulator/reset
location /emulator/ {
  proxy_pass         http://127.0.0.1:8090;
}
HERE
  if [ "$NGINX" != true ]; then
    return 0
  fi
  local listen6="  listen [::]:80 default_server;"
  if [ ! -f /proc/net/if_inet6 ]; then
    listen6="  # no IPv6 on this host"
  fi
  cat > /etc/nginx/sites-available/bigbluebutton <<HERE
# LAB STAND-IN: plain HTTP on port 80. The real install redirects to HTTPS and terminates TLS
# with a Let's Encrypt certificate (through haproxy when coturn runs locally).
server_tokens off;

server {
  listen 80 default_server;
$listen6
  server_name $HOST;

  access_log  /var/log/nginx/bigbluebutton.access.log;

  include /usr/share/bigbluebutton/nginx/*.nginx;
  # As bbb-install.sh 3.0 writes the site: operators' and packages' snippets at server level.
  include /etc/bigbluebutton/nginx/*.nginx;
}
HERE
  ln -sf ../sites-available/bigbluebutton /etc/nginx/sites-enabled/bigbluebutton
  rm -f /etc/nginx/sites-enabled/default
  if ! nginx -t >/dev/null 2>&1; then
    nginx -t
    err "lab stand-in: the nginx configuration does not load"
  fi
  systemctl enable nginx </dev/null >/dev/null 2>&1
  systemctl restart nginx </dev/null || err "lab stand-in: nginx did not start"
}

install_bbb_conf() {
  cat > /usr/bin/bbb-conf <<'BBB_CONF'
#!/bin/bash
#
# LAB STAND-IN for bbb-conf (bigbluebutton-config). NOT the real tool: it knows only the
# options below and the services the lab stand-in installs (bbb-web is an API emulator,
# freeswitch is a no-op).
#

if [[ "$(id -u)" != "0" ]]; then
  if [[ -x "$(which sudo)" ]]; then
    SUDO="$(which sudo)"
  else
    echo "bbb-conf must be ran as root!" && exit 1
  fi
fi

if [[ ! -f /etc/bigbluebutton/bigbluebutton-release ]]; then
  echo
  echo "# BigBlueButton does not appear to be installed.  Could not"
  echo "# locate: /etc/bigbluebutton/bigbluebutton-release"
  echo
  exit 1
fi

source /etc/bigbluebutton/bigbluebutton-release

BBB_WEB_CONFIG=/usr/share/bbb-web/WEB-INF/classes/bigbluebutton.properties
BBB_WEB_ETC_CONFIG=/etc/bigbluebutton/bbb-web.properties
FS_CONF=/opt/freeswitch/etc/freeswitch
# The no-op stand-ins install_units lays down (same list as the installer).
STANDIN_UNITS="redis-server bbb-apps-akka bbb-fsesl-akka bbb-webrtc-sfu bbb-graphql-server bbb-graphql-actions bbb-graphql-middleware bbb-pads bbb-export-annotations etherpad"

get_properties_value() {
  if [[ -f $2 ]]; then
    grep "^$1" "$2" | tail -n 1 | cut -d = -f 2-
  fi
}

get_bbb_web_config_value() {
  local val
  val="$(get_properties_value "$1" "$BBB_WEB_ETC_CONFIG")"
  if [[ -z $val ]]; then
    val="$(get_properties_value "$1" "$BBB_WEB_CONFIG")"
  fi
  echo "$val"
}

need_root() {
  if [ $EUID != 0 ]; then
    echo "Need to be root to run this option"
    exit 1
  fi
}

usage() {
  echo "BigBlueButton Configuration Utility - Version $BIGBLUEBUTTON_RELEASE (LAB STAND-IN)"
  echo
  echo "   bbb-conf [options]"
  echo
  echo "Configuration:"
  echo "   --version                        Display BigBlueButton version"
  echo "   --setip <IP/hostname>            Set IP/hostname for BigBlueButton"
  echo "   --setsecret <secret>             Change the shared secret in /etc/bigbluebutton/bbb-web.properties"
  echo
  echo "Monitoring:"
  echo "   --check                          Check configuration files and processes for problems"
  echo "   --secret                         View the URL and shared secret for the server"
  echo
  echo "Administration:"
  echo "   --restart                        Restart BigBlueButton"
  echo "   --stop                           Stop BigBlueButton"
  echo "   --start                          Start BigBlueButton"
  echo "   --status                         Display running status of components"
  echo
}

set_property() {
  # $1 key, $2 value: edit the override file in place, append if missing
  if grep -q "^$1=" "$BBB_WEB_ETC_CONFIG" 2>/dev/null; then
    local tmp
    tmp=$(mktemp)
    awk -v k="$1" -v v="$2" 'index($0, k "=") == 1 { print k "=" v; next } { print }' "$BBB_WEB_ETC_CONFIG" > "$tmp"
    cat "$tmp" > "$BBB_WEB_ETC_CONFIG"
    rm -f "$tmp"
  else
    echo "$1=$2" >> "$BBB_WEB_ETC_CONFIG"
  fi
}

stop_bigbluebutton() {
  echo "Stopping BigBlueButton"
  # shellcheck disable=SC2086
  systemctl stop bigbluebutton.target bbb-web.service freeswitch.service $STANDIN_UNITS
}

start_bigbluebutton() {
  if [ -x /etc/bigbluebutton/bbb-conf/apply-config.sh ]; then
    echo
    echo "Applying updates in /etc/bigbluebutton/bbb-conf/apply-config.sh: "
    /etc/bigbluebutton/bbb-conf/apply-config.sh
    echo
  fi
  if systemctl cat nginx.service >/dev/null 2>&1; then
    echo "Reloading NginX configuration"
    systemctl reload nginx 2>/dev/null || systemctl restart nginx
  fi
  echo "Starting BigBlueButton"
  # shellcheck disable=SC2086
  systemctl restart bigbluebutton.target bbb-web.service freeswitch.service $STANDIN_UNITS
}

display_bigbluebutton_status() {
  local units="freeswitch $STANDIN_UNITS bbb-web" unit status
  if systemctl cat nginx.service >/dev/null 2>&1; then
    units="nginx $units"
  fi
  line='—————————————————————————————►'
  for unit in $units; do
    status=$(systemctl is-active "$unit")
    if [ "$status" = "active" ]; then
      printf "%s %s [✔ - $status]\n" $unit "${line:${#unit}}"
    else
      printf "%s %s [✘ - $status]\n" $unit "${line:${#unit}}"
    fi
  done
}

api_answers() {
  local url
  for url in http://127.0.0.1/bigbluebutton/api http://127.0.0.1:8090/bigbluebutton/api; do
    if python3 - "$url" <<'PY' 2>/dev/null; then
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
sys.exit(0 if b"SUCCESS" in opener.open(sys.argv[1], timeout=2).read() else 1)
PY
      echo "$url"
      return 0
    fi
  done
  return 1
}

check_state() {
  local mem ncpu server_url problems=() i count
  mem=$(( $(grep MemTotal /proc/meminfo | awk '{print $2}') / 1000 ))
  ncpu=$(nproc --all)
  server_url=$(get_bbb_web_config_value bigbluebutton.web.serverURL)

  echo
  echo "BigBlueButton Server $BIGBLUEBUTTON_RELEASE (lab build ${BBB_LAB_BUILD:-?}) -- LAB STAND-IN, not BigBlueButton"
  echo "                    Kernel version: $(uname -r)"
  echo "                      Distribution: $(. /etc/os-release; echo "$PRETTY_NAME")"
  echo "                            Memory: $mem MB"
  echo "                         CPU cores: $ncpu"
  echo
  echo "$BBB_WEB_ETC_CONFIG (override for bbb-web)"
  echo "$BBB_WEB_CONFIG (bbb-web)"
  printf "%34s: %s\n" "bigbluebutton.web.serverURL" "$server_url"
  for key in defaultGuestPolicy defaultMeetingLayout disableRecordingDefault allowStartStopRecording \
             breakoutRoomsRecord defaultKeepEvents defaultDialAccessNumber supportedChecksumAlgorithms; do
    printf "%34s: %s\n" "$key" "$(get_bbb_web_config_value "$key")"
  done
  echo
  if [ -f /etc/nginx/sites-available/bigbluebutton ]; then
    echo "/etc/nginx/sites-available/bigbluebutton (nginx)"
    printf "%34s: %s\n" "server_name" "$(sed -n '/server_name/{s/.*server_name[ ]*//;s/;//;p}' /etc/nginx/sites-available/bigbluebutton | head -n 1)"
    printf "%34s: %s\n" "port" "80 (plain HTTP in the lab)"
    echo
  fi
  echo "$FS_CONF (FreeSWITCH -- stand-in, no-op)"
  printf "%34s: %s\n" "sip_profiles/external" "$(ls "$FS_CONF/sip_profiles/external" 2>/dev/null | wc -l) file(s)"
  printf "%34s: %s\n" "dialplan/public" "$(ls "$FS_CONF/dialplan/public" 2>/dev/null | wc -l) file(s)"
  echo
  if [ -f /etc/bigbluebutton/turn-stun-servers.xml ]; then
    echo "/etc/bigbluebutton/turn-stun-servers.xml (TURN)"
    grep -o 'value="turns\?:[^"]*"' /etc/bigbluebutton/turn-stun-servers.xml | sed 's/value=//;s/"//g' | \
      while read -r url; do printf "%34s: %s\n" "turn server" "$url"; done
    echo
  fi

  echo
  echo "# Potential problems described below"

  for unit in bbb-web freeswitch $STANDIN_UNITS; do
    if ! systemctl is-active --quiet "$unit"; then
      problems+=("# Not running: $unit")
    fi
  done
  if systemctl cat nginx.service >/dev/null 2>&1 && ! systemctl is-active --quiet nginx; then
    problems+=("# Not running: Nginx")
  fi
  if [ "$(stat -c %U /var/bigbluebutton 2>/dev/null)" != "bigbluebutton" ]; then
    problems+=("# Warning: Detected the directory" "#    /var/bigbluebutton" "# is not owned by bigbluebutton")
  fi
  count=0
  while [ $count -lt 20 ] && ! api_answers >/dev/null; do
    count=$((count + 1))
    echo -n "."
    sleep 0.5
  done
  if ! api_answers >/dev/null; then
    echo
    problems+=("# Error: Could not connect to the BigBlueButton API on this host" "#" "#    http://127.0.0.1/bigbluebutton/api" "#")
  fi
  for i in "${problems[@]}"; do
    echo "$i"
  done
  echo
}

if [ $# -eq 0 ]; then
  usage
  exit 1
fi

while [ $# -gt 0 ]; do
  case "$1" in
    --stop|-stop)
      need_root; stop_bigbluebutton; exit 0 ;;
    --start|-start)
      need_root; start_bigbluebutton; exit 0 ;;
    --check|-check|-c)
      CHECK=1; shift ;;
    --version|-version|-v)
      echo; echo "BigBlueButton Server $BIGBLUEBUTTON_RELEASE (lab build ${BBB_LAB_BUILD:-?}) -- LAB STAND-IN"; echo; exit 0 ;;
    --status|-status)
      display_bigbluebutton_status; exit 0 ;;
    --restart|-restart)
      RESTART=1; shift ;;
    --setip|-setip)
      SETIP="${2}"
      if [ -z "$SETIP" ]; then usage; exit 1; fi
      SETIP=$(echo "$SETIP" | cut -d: -f1)
      shift; shift ;;
    --salt|-salt|--setsalt|--secret|-secret|--setsecret)
      SECRET="${2}"
      if [ -z "$SECRET" ]; then
        BBB_WEB_URL=$(get_bbb_web_config_value bigbluebutton.web.serverURL)
        SECRET=$(get_bbb_web_config_value securitySalt)
        echo
        echo "    URL: $BBB_WEB_URL/bigbluebutton/"
        echo "    Secret: $SECRET"
        echo
        echo "    Link to the API-Mate:"
        echo "    https://mconf.github.io/api-mate/#server=$BBB_WEB_URL/bigbluebutton/&sharedSecret=$SECRET"
        echo
        exit 0
      fi
      shift; shift ;;
    *)
      usage; exit 1 ;;
  esac
done

if [[ $SECRET ]]; then
  need_root
  echo "Assigning secret in $BBB_WEB_ETC_CONFIG"
  set_property securitySalt "$SECRET"
  if [ -f /etc/bigbluebutton/bbb-apps-akka.conf ]; then
    sed -i "s/sharedSecret[ ]*=[ ]*\"[^\"]*\"/sharedSecret=\"$SECRET\"/g" /etc/bigbluebutton/bbb-apps-akka.conf
  fi
  # As the real one: change_yml_value in bbb-webhooks' packaged config when it is installed.
  if [ -f /usr/local/bigbluebutton/bbb-webhooks/config/default.yml ]; then
    sed -i "s<^\([[:blank:]#]*\)\(sharedSecret\): .*<\1\2: $SECRET<" /usr/local/bigbluebutton/bbb-webhooks/config/default.yml
  fi
  echo
  echo "BigBlueButton's shared secret is now $SECRET"
  echo
  echo "You must restart BigBlueButton for the changes to take effect"
  echo
  echo "  $SUDO bbb-conf --restart"
  echo
  echo
fi

if [[ $SETIP ]]; then
  need_root
  scheme=$(get_bbb_web_config_value bigbluebutton.web.serverURL | sed -n 's#^\(https\?\)://.*#\1#p')
  echo "Assigning $SETIP for ${scheme:-https}://$SETIP in $BBB_WEB_ETC_CONFIG"
  set_property bigbluebutton.web.serverURL "${scheme:-https}://$SETIP"
  if [ -f /etc/nginx/sites-available/bigbluebutton ]; then
    sed -i "s/^\([ \t]*server_name[ \t]*\).*;/\1$SETIP;/" /etc/nginx/sites-available/bigbluebutton
  fi
  # As the real bbb-conf --setip: akka-apps gets the API URL and the current securitySalt.
  if [ -f /etc/bigbluebutton/bbb-apps-akka.conf ]; then
    sed -i "s#bbbWebAPI[ ]*=[ ]*\"[^\"]*\"#bbbWebAPI=\"${scheme:-https}://$SETIP/bigbluebutton/api\"#g" /etc/bigbluebutton/bbb-apps-akka.conf
    SECRET=$(get_bbb_web_config_value securitySalt)
    sed -i "s/sharedSecret[ ]*=[ ]*\"[^\"]*\"/sharedSecret=\"$SECRET\"/g" /etc/bigbluebutton/bbb-apps-akka.conf
  fi
  stop_bigbluebutton
  start_bigbluebutton
fi

if [[ $RESTART ]]; then
  need_root
  stop_bigbluebutton
  start_bigbluebutton
  CHECK=1
fi

if [[ $CHECK ]]; then
  check_state
fi
BBB_CONF
  chmod 755 /usr/bin/bbb-conf
}

main "$@" || exit 1
