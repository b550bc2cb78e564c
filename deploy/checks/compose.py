"""Offline checks of Dockerfile and docker-compose.yml (no Docker engine here):

    python compose.py <sdsim binary>

- the Dockerfile: multi-stage, `cargo build --release --locked -p sdsim`, a debian:12-slim
  runtime with a non-root USER, EXPOSE equal to README's port table, a HEALTHCHECK on /livez;
- docker-compose.yml: references resolve (depends_on, named volumes, bind-mounted files of
  the repository), the services the issue asks for are there, each sdsim service's
  environment is a valid sdsim configuration (`sdsim config` accepts it: a misspelt
  SDSIM_* key fails), its health port is its service's HTTP port, and HAProxy, Prometheus
  and Grafana point at services that exist on the right ports;
- `docker compose config` as well when the Docker CLI has the compose plugin.
"""

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = sys.argv[1]
HTTP_PORT = {"gateway": 8000, "auth": 9001, "project": 10001, "simulation": 11001}
failures = []


def fail(msg):
    failures.append(msg)


def readme_ports():
    text = open(os.path.join(ROOT, "README.md")).read()
    ports = set()
    for m in re.finditer(r"^\| (gateway|auth|project|simulation) \| (\d+) \| (\d+)", text, re.M):
        ports.update({int(m.group(2)), int(m.group(3))})
    return ports


# --- Dockerfile --------------------------------------------------------------------------
df = open(os.path.join(ROOT, "Dockerfile")).read()
froms = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", df, re.M | re.I)
if len(froms) < 2:
    fail("Dockerfile: not multi-stage")
if not froms or not froms[-1][0].startswith("debian:12-slim"):
    fail(f"Dockerfile: runtime stage is {froms[-1] if froms else None}, want debian:12-slim")
if "cargo build --release --locked -p sdsim" not in df:
    fail("Dockerfile: no `cargo build --release --locked -p sdsim`")
users = re.findall(r"^USER\s+(\S+)", df, re.M)
if not users or users[-1].split(":")[0] in ("root", "0"):
    fail(f"Dockerfile: runtime user {users}")
expose = {int(p) for line in re.findall(r"^EXPOSE\s+(.+)$", df, re.M) for p in line.split()}
if expose != readme_ports():
    fail(f"Dockerfile: EXPOSE {sorted(expose)} but README's ports are {sorted(readme_ports())}")
if not re.search(r"^HEALTHCHECK .*\n?.*?/livez", df, re.M):
    fail("Dockerfile: no HEALTHCHECK on /livez")
image_env = {}
m = re.search(r"^ENV\s+((?:.*\\\n)*.*)$", df, re.M)
if m:
    for k, v in re.findall(r"(\w+)=(\S+)", m.group(1)):
        image_env[k] = v
di = [l.strip() for l in open(os.path.join(ROOT, ".dockerignore")) if l.strip() and not l.startswith("#")]
for needed in ("console/web", "engine", "Cargo.lock", "benches"):
    if needed in di:
        fail(f".dockerignore excludes {needed}, which the build needs")

# --- docker-compose.yml ----------------------------------------------------------------
compose = yaml.safe_load(open(os.path.join(ROOT, "docker-compose.yml")))
services = compose["services"]
volumes = set((compose.get("volumes") or {}).keys())
for want in ("postgres", "redis", "auth", "project", "simulation", "gateway1", "gateway2", "gateway3",
             "haproxy", "prometheus", "grafana"):
    if want not in services:
        fail(f"compose: no service {want}")


def interpolate(value):
    """${VAR:-default} -> default, ${VAR:?msg} / ${VAR} -> a placeholder."""
    value = str(value)
    value = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{\w+(:\?[^}]*)?\}", "x" * 48, value)


for name, svc in services.items():
    if "image" not in svc and "build" not in svc:
        fail(f"compose: {name} has neither image nor build")
    deps = svc.get("depends_on") or []
    for dep in deps if isinstance(deps, list) else deps.keys():
        if dep not in services:
            fail(f"compose: {name} depends on unknown service {dep}")
    for v in svc.get("volumes") or []:
        src = v.split(":")[0]
        if src.startswith("."):
            path = os.path.normpath(os.path.join(ROOT, src))
            if not os.path.exists(path) and not src.startswith("./.local"):
                fail(f"compose: {name} mounts {src}, which is not in the repository")
        elif src not in volumes:
            fail(f"compose: {name} uses undeclared volume {src}")
    cmd = svc.get("command") or []
    if svc.get("image", "").startswith("sdsim") and cmd[:1] == ["serve"]:
        service = cmd[1]
        env = {k: interpolate(v) for k, v in (svc.get("environment") or {}).items()}
        if int(env.get("SDSIM_HEALTH_PORT", "0")) != HTTP_PORT[service]:
            fail(f"compose: {name} SDSIM_HEALTH_PORT {env.get('SDSIM_HEALTH_PORT')} is not {service}'s HTTP port")
        if env.get("SDSIM_DISCOVERY__ADVERTISE_HOST") != name:
            fail(f"compose: {name} advertises {env.get('SDSIM_DISCOVERY__ADVERTISE_HOST')}")
        run_env = {"PATH": os.environ["PATH"], **image_env, **env}
        r = subprocess.run([BIN, "config"], env=run_env, capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"compose: {name}'s environment is not a valid sdsim configuration: {r.stderr.strip()}")
        for up in ("SDSIM_UPSTREAM__AUTH", "SDSIM_UPSTREAM__PROJECT", "SDSIM_UPSTREAM__SIMULATION", "SDSIM_UPSTREAM__GATEWAY"):
            for url in env.get(up, "").split(","):
                host = re.sub(r"^http://", "", url).split(":")[0]
                if url and host not in services:
                    fail(f"compose: {name} {up} names unknown host {host}")

hap = services.get("haproxy", {}).get("environment", {})
for k in ("SDSIM_GATEWAY_1", "SDSIM_GATEWAY_2", "SDSIM_GATEWAY_3"):
    host, port = hap.get(k, ":").split(":")
    if host not in services or int(port or 0) != 8000:
        fail(f"compose: haproxy {k}={hap.get(k)} is no gateway's HTTP port")

# X-Forwarded-For: trusted from HAProxy's fixed address only, never from any peer.
hap_ip = ((services.get("haproxy", {}).get("networks") or {}).get("default") or {}).get("ipv4_address")
ipam = ((compose.get("networks") or {}).get("default") or {}).get("ipam", {}).get("config", [{}])[0]
if ipam.get("ip_range") and hap_ip and ipaddress.ip_address(hap_ip) in ipaddress.ip_network(ipam["ip_range"]):
    fail(f"compose: HAProxy's fixed address {hap_ip} is inside the range Docker assigns ({ipam['ip_range']})")
if not ipam.get("ip_range"):
    fail("compose: the default network needs an ip_range that leaves HAProxy's fixed address out")
if not hap_ip or hap.get("SDSIM_HAPROXY_SOURCE") != hap_ip:
    fail(f"compose: haproxy must connect from its fixed address ({hap_ip}), SDSIM_HAPROXY_SOURCE={hap.get('SDSIM_HAPROXY_SOURCE')}")
for name, svc in services.items():
    env = svc.get("environment") or {}
    if str(env.get("SDSIM_GATEWAY__TRUST_FORWARDED_FOR", "false")).lower() == "true":
        fail(f"compose: {name} trusts X-Forwarded-For from any peer")
    if (svc.get("command") or [])[:2] == ["serve", "gateway"]:
        trusted = json.loads(env.get("SDSIM_GATEWAY__TRUSTED_PROXIES", "[]"))
        if trusted != [hap_ip]:
            fail(f"compose: {name} trusts X-Forwarded-For from {trusted}, not HAProxy's {hap_ip} only")

# Prometheus targets are compose services on their HTTP ports.
prom = yaml.safe_load(open(os.path.join(ROOT, "deploy", "prometheus", "prometheus.yml")))
for job in prom["scrape_configs"]:
    for sc in job.get("static_configs", []):
        for t in sc["targets"]:
            host, port = t.split(":")
            if host not in services:
                fail(f"prometheus.yml: {job['job_name']} target {t} is no compose service")
            svc = services.get(host, {})
            cmd = svc.get("command") or []
            if cmd[:1] == ["serve"] and HTTP_PORT[cmd[1]] != int(port):
                fail(f"prometheus.yml: {t} is not {cmd[1]}'s HTTP port")
for rf in prom.get("rule_files", []):
    if not os.path.exists(os.path.join(ROOT, "deploy", "prometheus", rf)):
        fail(f"prometheus.yml: rule file {rf} missing")

# Grafana: the datasource is the prometheus service; the dashboards path is mounted.
ds = yaml.safe_load(open(os.path.join(ROOT, "deploy", "grafana", "provisioning", "datasources", "prometheus.yml")))
url = ds["datasources"][0]["url"]
if re.sub(r"^https?://", "", url).split(":")[0] not in services:
    fail(f"grafana datasource {url} is no compose service")
prov = yaml.safe_load(open(os.path.join(ROOT, "deploy", "grafana", "provisioning", "dashboards", "sdsim.yml")))
path = prov["providers"][0]["options"]["path"]
mounts = [v.split(":")[1] for v in services["grafana"].get("volumes", [])]
if path not in mounts:
    fail(f"grafana dashboards path {path} is not mounted ({mounts})")

docker = shutil.which("docker")
if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
    env = dict(os.environ, SDSIM_JWT_SECRET="x" * 48)
    r = subprocess.run([docker, "compose", "-f", os.path.join(ROOT, "docker-compose.yml"), "config", "-q"],
                       env=env, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"docker compose config: {r.stderr.strip()}")
    else:
        print("docker compose config: ok")
else:
    print("docker compose plugin not available: the compose file is checked by this script only")

if failures:
    for f in failures:
        print("FAIL: " + f, file=sys.stderr)
    sys.exit(1)
print(f"ok: Dockerfile and docker-compose.yml ({len(services)} services) check out offline")
