# The benchmark's pyinfra inventory: the hosts of the lab `bench`, connected with paramiko
# through the lab's generated ssh_config, key and known_hosts, strict host-key checking.
# The lab's state dir comes from BENCH_LAB_STATE (bench/run sets it), else the default place.
import os

_state = os.environ.get("BENCH_LAB_STATE") or os.path.abspath("../../../lab/.state/bench")
_limit = int(os.environ.get("BENCH_HOSTS", "20"))

with open(os.path.join(_state, "hosts")) as f:
    _names = [line.split()[0] for line in f if line.strip()][:_limit]

_connect = {
    "ssh_user": "root",
    "ssh_config_file": os.path.join(_state, "ssh_config"),
    "ssh_key": os.path.join(_state, "id_ed25519"),
    "ssh_known_hosts_file": os.path.join(_state, "known_hosts"),
    "ssh_strict_host_key_checking": "yes",
    "ssh_allow_agent": False,
    "ssh_look_for_keys": False,
}

bench = [(name, dict(_connect)) for name in _names]
