# The second benchmark workload for pyinfra: the same 18 steps as
# ../rollout/roles/kinds/steps.yml. Run from bench/workload/pyinfra (its inventory.py) with
# BENCH_FILES_URL and BENCH_DOWNLOAD_SHA256 set (bench/run sets them).
# Guarded command: the pyinfra idiom, as in the first workload (a File fact at compile time).
import os
from io import StringIO

from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.operations import apt, files, server, systemd

URL = os.environ["BENCH_FILES_URL"]
SHA = os.environ["BENCH_DOWNLOAD_SHA256"]
H = host.name

files.directory(name="dir /opt/kinds", path="/opt/kinds", user="root", group="root", mode="755")
files.put(name="file kinds.conf", src=StringIO(f"host={H}\nkinds=all\n"),
          dest="/opt/kinds/kinds.conf", user="root", group="root", mode="644")
files.line(name="property app.mode", path="/opt/kinds/app.properties", line=r"^app\.mode=.*$",
           replace="app.mode=kinds")
for k, v in [("K1", "one"), ("K2", "two"), ("K3", "three"), ("K4", "four"), ("K5", "five"),
             ("K6", "six"), ("K7", "seven"), ("K8", "eight")]:
    files.line(name=f"line {k}", path="/opt/kinds/app.env", line=f"^{k}=.*$", replace=f"{k}={v}")
apt.packages(name="packages present", packages=["openssh-server", "dbus"])
systemd.service(name="ssh enabled and running", service="ssh", running=True, enabled=True)
files.download(name="installer pinned", src=f"{URL}/bbb-install.sh",
               dest="/opt/kinds/bbb-install.sh", sha256sum=SHA, user="root", group="root",
               mode="755")
# pyinfra's server.wait needs netstat, which the lab image lacks (it loops for ever without it):
# the same connect test as Ansible's wait_for and rollout's, at most 30 s.
server.shell(name="sshd answers",
             commands=["timeout 30 bash -c 'until (exec 3<>/dev/tcp/127.0.0.1/22) 2>/dev/null; "
                       "do sleep 0.2; done'"])
if not host.get_fact(File, path="/opt/kinds/init.done"):
    server.shell(name="init marker", commands=["cp /etc/hostname /opt/kinds/init.done"])
server.shell(name="preflight Debian",
             commands=["grep -qx 'ID=debian' /etc/os-release"])
files.put(name="env file mode", src=StringIO("written by the kinds workload\n"),
          dest="/opt/kinds/README", user="root", group="root", mode="644")
