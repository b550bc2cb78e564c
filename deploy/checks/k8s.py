"""Offline checks of deploy/k8s/: python k8s.py <sdsim binary>

- every manifest validates (strict: unknown fields are errors) against the Kubernetes
  schemas kubernetes-validate ships, for the oldest and newest versions we target;
- every Deployment probes /livez (liveness, startup) and /readyz (readiness) on its HTTP
  port, sets requests and limits, runs as non-root with a read-only root filesystem and no
  privilege escalation, and has a Service and a PodDisruptionBudget selecting its pods;
  the HPA scales an existing Deployment; kustomization.yaml lists every manifest; a
  NetworkPolicy selects every Deployment's pods, and the gateway's HTTP port (whose
  X-Forwarded-For is trusted from the pod network) is open only to chosen namespaces;
- each container's environment (ConfigMap + Secret + its own env) is a valid sdsim
  configuration (`sdsim config` accepts it);
- the generated manifests are what deploy/k8s/generate.py writes.
"""

import glob
import os
import subprocess
import sys
import tempfile

import yaml
import kubernetes_validate

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
K8S = os.path.join(ROOT, "deploy", "k8s")
BIN = sys.argv[1]
VERSIONS = ["1.29.0", "1.37.0"]
HTTP_PORT = {"gateway": 8000, "auth": 9001, "project": 10001, "simulation": 11001}
failures = []


def fail(msg):
    failures.append(msg)


files = sorted(glob.glob(os.path.join(K8S, "*.yaml")))
docs = []  # (file, doc)
for path in files:
    for d in yaml.safe_load_all(open(path)):
        if d:
            docs.append((os.path.basename(path), d))

validated = 0
for name, d in docs:
    if d["kind"] == "Kustomization":
        continue
    for v in VERSIONS:
        try:
            kubernetes_validate.validate(d, v, strict=True)
            validated += 1
        except kubernetes_validate.ValidationError as e:
            fail(f"{name}: {d['kind']}/{d['metadata']['name']} against {v}: {e.message} at {'.'.join(map(str, e.path))}")
        except Exception as e:  # noqa: BLE001 - an unknown kind or version is a failure too
            fail(f"{name}: {d['kind']}/{d['metadata']['name']} against {v}: {e}")
print(f"{validated} manifest validations passed (strict, Kubernetes {' and '.join(VERSIONS)})")

by_kind = {}
for name, d in docs:
    by_kind.setdefault(d["kind"], []).append(d)
config = {k: str(v) for d in by_kind.get("ConfigMap", []) for k, v in d.get("data", {}).items()}
secret = {k: str(v) for d in by_kind.get("Secret", []) for k, v in d.get("stringData", {}).items()}


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


for dep in by_kind.get("Deployment", []):
    n = dep["metadata"]["name"]
    pod = dep["spec"]["template"]
    labels = pod["metadata"]["labels"]
    spec = pod["spec"]
    if not spec.get("securityContext", {}).get("runAsNonRoot"):
        fail(f"{n}: pod securityContext.runAsNonRoot is not true")
    for c in spec["containers"]:
        service = c["args"][1] if c.get("args", [])[:1] == ["serve"] else None
        http = HTTP_PORT.get(service)
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        if ports.get("http") != http:
            fail(f"{n}: http port {ports.get('http')}, want {http}")
        for probe, path in (("livenessProbe", "/livez"), ("startupProbe", "/livez"), ("readinessProbe", "/readyz")):
            got = c.get(probe, {}).get("httpGet", {})
            if got.get("path") != path or got.get("port") not in ("http", http):
                fail(f"{n}: {probe} is {got}, want GET {path} on the HTTP port")
        res = c.get("resources", {})
        for k in ("requests", "limits"):
            if not {"cpu", "memory"} <= set(res.get(k, {})):
                fail(f"{n}: resources.{k} needs cpu and memory")
        sc = c.get("securityContext", {})
        if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
                and sc.get("runAsNonRoot") and "ALL" in sc.get("capabilities", {}).get("drop", [])):
            fail(f"{n}: container securityContext is not locked down: {sc}")
        if pod["metadata"].get("annotations", {}).get("prometheus.io/port") != str(http):
            fail(f"{n}: prometheus.io/port is not the HTTP port")
        env = {"PATH": os.environ["PATH"], **config, **secret}
        for e in c.get("env", []):
            env[e["name"]] = e.get("value", "10.0.0.1")
        r = subprocess.run([BIN, "config"], env=env, capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"{n}: the environment is not a valid sdsim configuration: {r.stderr.strip()}")
    if not any(selects({"matchLabels": s["spec"]["selector"]}, labels) for s in by_kind.get("Service", [])):
        fail(f"{n}: no Service selects its pods")
    if not any(selects(p["spec"]["selector"], labels) for p in by_kind.get("PodDisruptionBudget", [])):
        fail(f"{n}: no PodDisruptionBudget selects its pods")
    policies = [p for p in by_kind.get("NetworkPolicy", []) if selects(p["spec"]["podSelector"], labels)]
    if not policies:
        fail(f"{n}: no NetworkPolicy selects its pods")
    if labels.get("app.kubernetes.io/component") == "gateway":
        # X-Forwarded-For is trusted from the pod network: its HTTP port must not be open to it.
        for p in policies:
            for rule in p["spec"].get("ingress", []):
                opens_http = not rule.get("ports") or any(x.get("port") in (8000, "http") for x in rule["ports"])
                if opens_http and (not rule.get("from") or any("podSelector" in f and "namespaceSelector" not in f for f in rule["from"])):
                    fail(f"{n}: NetworkPolicy {p['metadata']['name']} opens the HTTP port to pods other than the ingress and monitoring namespaces")
deployments = {d["metadata"]["name"] for d in by_kind.get("Deployment", [])}
for hpa in by_kind.get("HorizontalPodAutoscaler", []):
    if hpa["spec"]["scaleTargetRef"]["name"] not in deployments:
        fail(f"HPA {hpa['metadata']['name']} scales unknown {hpa['spec']['scaleTargetRef']['name']}")
if "sdsim-gateway" not in {h["spec"]["scaleTargetRef"]["name"] for h in by_kind.get("HorizontalPodAutoscaler", [])}:
    fail("no HPA for the gateway")
kust = next((d for _, d in docs if d["kind"] == "Kustomization"), None)
listed = set(kust["resources"]) if kust else set()
missing = {os.path.basename(f) for f in files} - listed - {"kustomization.yaml"}
if missing:
    fail(f"kustomization.yaml does not list {sorted(missing)}")

# The generated manifests are up to date.
with tempfile.TemporaryDirectory() as tmp:
    src = open(os.path.join(K8S, "generate.py")).read().replace(
        'HERE = os.path.dirname(os.path.abspath(__file__))', f'HERE = {tmp!r}')
    subprocess.run([sys.executable, "-c", src], check=True, capture_output=True)
    for f in os.listdir(tmp):
        if open(os.path.join(tmp, f)).read() != open(os.path.join(K8S, f)).read():
            fail(f"deploy/k8s/{f} differs from what generate.py writes: run it")

if failures:
    for f in failures:
        print("FAIL: " + f, file=sys.stderr)
    sys.exit(1)
print(f"ok: {len(docs)} Kubernetes objects in {len(files)} files check out")
