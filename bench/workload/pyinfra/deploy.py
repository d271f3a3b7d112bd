# The benchmark workload for pyinfra: the same 30 steps as ../rollout/roles/bench/steps.yml.
# Run from this directory: pyinfra -y --parallel 20 inventory.py deploy.py
#
# Guarded commands: pyinfra's server.shell has no `creates`; the pyinfra idiom is to read a
# fact while the deploy is being compiled and only add the operation when it is needed:
#     if not host.get_fact(File, path=done): server.shell(...)
# so a no-op run has no command operations at all (just one File fact per command).
import os

import yaml
from pyinfra import host
from pyinfra.facts.files import File
from pyinfra.operations import files, server

with open(os.path.join("..", "vars.yml")) as f:
    V = yaml.safe_load(f)

DIRS = ["/opt/bench", "/opt/bench/conf", "/opt/bench/data", "/opt/bench/log", "/opt/bench/run",
        "/opt/bench/cache"]
NAMES = ["web", "worker", "cache", "metrics", "logging", "backup", "proxy", "scheduler"]
H = host.name
PROPS = [
    ("app.name", H),
    ("app.env", V["bench_env"]),
    ("app.port", V["bench_port_base"]),
    ("app.workers", V["bench_workers"]),
    ("app.log.level", V["bench_log_level"]),
    ("app.cache.size", V["bench_cache_size"]),
    ("app.recording", "false"),
    ("app.salt", f"{V['bench_salt']}-{H}"),
]

for d in DIRS:
    files.directory(name=f"dir {d}", path=d, user="root", group="root", mode="755")

for i, n in enumerate(NAMES, 1):
    files.template(
        name=f"template {n}.conf",
        src=os.path.join("..", "templates", "bench", f"{i:02d}-{n}.conf.j2"),
        dest=f"/opt/bench/conf/{n}.conf",
        user="root",
        group="root",
        mode="644",
        inventory_hostname=H,
        **V,
    )

for k, v in PROPS:
    files.line(
        name=f"property {k}",
        path="/opt/bench/conf/app.properties",
        line="^" + k.replace(".", "\\.") + "=.*$",
        replace=f"{k}={v}",
    )

for i in range(1, 9):
    done = f"/opt/bench/data/c{i:02d}.done"
    if not host.get_fact(File, path=done):
        server.shell(name=f"command {i:02d}", commands=[f"cp /etc/hostname {done}"])
