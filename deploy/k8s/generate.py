"""Writes the per-service manifests of deploy/k8s/ (Deployment, Service,
PodDisruptionBudget for each of gateway, auth, project, simulation):

    python3 deploy/k8s/generate.py

The four differ only in ports, replicas and resources, so they are made from one template
here; edit this file, not the YAML it writes. namespace.yaml, config.yaml (ConfigMap and
Secret), migrate-job.yaml, hpa.yaml and kustomization.yaml are written by hand.
"""

import os

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGE = "ghcr.io/example/sdsim:0.1.0"  # replace with your registry's image

SERVICES = {
    # name: (grpc, http, replicas, requests cpu, requests memory, limits cpu, limits memory)
    "gateway": (8001, 8000, 3, "250m", "128Mi", "2", "512Mi"),
    "auth": (9000, 9001, 2, "250m", "128Mi", "2", "512Mi"),  # bcrypt is CPU-bound
    "project": (10000, 10001, 2, "100m", "128Mi", "1", "512Mi"),
    "simulation": (11000, 11001, 2, "500m", "256Mi", "4", "2Gi"),  # the engine is CPU-bound
}

TEMPLATE = """\
# sdsim {name}: `sdsim serve {name}`. Written by deploy/k8s/generate.py.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sdsim-{name}
  namespace: sdsim
  labels: &labels
    app.kubernetes.io/name: sdsim
    app.kubernetes.io/component: {name}
spec:
  replicas: {replicas}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      app.kubernetes.io/name: sdsim
      app.kubernetes.io/component: {name}
  strategy:
    type: RollingUpdate
    rollingUpdate: {{maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: sdsim
        app.kubernetes.io/component: {name}
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: "{http}"
        prometheus.io/path: /metrics
    spec:
      automountServiceAccountToken: false
      # sdsim drains on SIGTERM: unready at once, WebSockets closed with 1001, in-flight
      # requests given shutdown.grace_ms (10 s).
      terminationGracePeriodSeconds: 30
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        fsGroup: 10001
        seccompProfile: {{type: RuntimeDefault}}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              app.kubernetes.io/name: sdsim
              app.kubernetes.io/component: {name}
      containers:
        - name: sdsim
          image: {image}
          imagePullPolicy: IfNotPresent
          args: ["serve", "{name}"]
          ports:
            - {{name: grpc, containerPort: {grpc}, protocol: TCP}}
            - {{name: http, containerPort: {http}, protocol: TCP}}
          envFrom:
            - configMapRef: {{name: sdsim-config}}
            - secretRef: {{name: sdsim-secrets}}
          env:
            - name: SDSIM_{upper}__LISTEN__GRPC
              value: "0.0.0.0:{grpc}"
            - name: SDSIM_{upper}__LISTEN__HTTP
              value: "0.0.0.0:{http}"
            # Other instances dial this pod's own address (discovery in Redis).
            - name: SDSIM_DISCOVERY__ADVERTISE_HOST
              valueFrom: {{fieldRef: {{fieldPath: status.podIP}}}}
            - name: SDSIM_INSTANCE_ID
              valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
          startupProbe:
            httpGet: {{path: /livez, port: http}}
            periodSeconds: 2
            failureThreshold: 30
          livenessProbe:
            httpGet: {{path: /livez, port: http}}
            periodSeconds: 10
            timeoutSeconds: 2
            failureThreshold: 3
          readinessProbe:
            httpGet: {{path: /readyz, port: http}}
            periodSeconds: 2
            timeoutSeconds: 2
            failureThreshold: 2
          resources:
            requests: {{cpu: "{req_cpu}", memory: {req_mem}}}
            limits: {{cpu: "{lim_cpu}", memory: {lim_mem}}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            capabilities: {{drop: ["ALL"]}}
          volumeMounts:
            - {{name: tmp, mountPath: /tmp}}
            - {{name: outbox, mountPath: /var/lib/sdsim/outbox}}
      volumes:
        - {{name: tmp, emptyDir: {{sizeLimit: 64Mi}}}}
        - {{name: outbox, emptyDir: {{sizeLimit: 64Mi}}}}
---
apiVersion: v1
kind: Service
metadata:
  name: sdsim-{name}
  namespace: sdsim
  labels:
    app.kubernetes.io/name: sdsim
    app.kubernetes.io/component: {name}
spec:
  type: ClusterIP
  selector:
    app.kubernetes.io/name: sdsim
    app.kubernetes.io/component: {name}
  ports:
    - {{name: grpc, port: {grpc}, targetPort: grpc, protocol: TCP, appProtocol: kubernetes.io/h2c}}
    - {{name: http, port: {http}, targetPort: http, protocol: TCP}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: sdsim-{name}
  namespace: sdsim
spec:
  {budget}
  selector:
    matchLabels:
      app.kubernetes.io/name: sdsim
      app.kubernetes.io/component: {name}
"""

if __name__ == "__main__":
    for name, (grpc, http, replicas, rc, rm, lc, lm) in SERVICES.items():
        budget = "minAvailable: 2" if name == "gateway" else "maxUnavailable: 1"
        text = TEMPLATE.format(name=name, upper=name.upper(), grpc=grpc, http=http, replicas=replicas,
                               req_cpu=rc, req_mem=rm, lim_cpu=lc, lim_mem=lm, image=IMAGE, budget=budget)
        text = text.replace("  labels: &labels\n", "  labels:\n")
        path = os.path.join(HERE, f"{name}.yaml")
        with open(path, "w") as f:
            f.write(text)
        print(path)
