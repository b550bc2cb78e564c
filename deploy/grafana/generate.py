"""Writes the Grafana dashboards of deploy/grafana/dashboards/ from the panel lists below:

    python3 deploy/grafana/generate.py

Edit the lists here, not the JSON (which is committed so Grafana needs no build step). Every
query uses sdsim's real metric names (or the recording rules of deploy/prometheus/); the
check deploy/checks/prometheus.sh runs each one against a Prometheus scraping a live sdsim.
A label `exported_instance` is the target instance of a pool or breaker (see
deploy/prometheus/prometheus.yml); `instance` is the scraped process.
"""

import json
import os

DS = {"type": "prometheus", "uid": "prometheus"}
HERE = os.path.dirname(os.path.abspath(__file__))
API = 'job="sdsim-gateway", route=~"/api/.*"'


def panel(title, exprs, unit="short", kind="timeseries", desc="", stack=False):
    """exprs: [(expr, legend)]."""
    p = {
        "type": kind,
        "title": title,
        "description": desc,
        "datasource": DS,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DS, "expr": e, "legendFormat": legend, "range": True}
            for i, (e, legend) in enumerate(exprs)
        ],
        "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]}},
    }
    if kind == "timeseries" and stack:
        p["fieldConfig"]["defaults"]["custom"] = {"stacking": {"mode": "normal"}, "fillOpacity": 30}
    if kind == "stat":
        p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value", "graphMode": "area"}
    return p


def dashboard(uid, title, desc, rows):
    """rows: [(row title, [panels])]: panels laid out two (or three stats) per line."""
    panels, y, pid = [], 0, 1
    for row_title, row_panels in rows:
        panels.append({"type": "row", "title": row_title, "id": pid, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        pid += 1
        y += 1
        x = 0
        for p in row_panels:
            w = 8 if p["type"] == "stat" else 12
            h = 5 if p["type"] == "stat" else 8
            if x + w > 24:
                x, y = 0, y + h
            p = dict(p, id=pid, gridPos={"h": h, "w": w, "x": x, "y": y})
            pid += 1
            panels.append(p)
            x += w
        y += 8
    return {
        "uid": uid,
        "title": title,
        "description": desc,
        "tags": ["sdsim"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "links": [{"title": "sdsim dashboards", "type": "dashboards", "tags": ["sdsim"], "asDropdown": True}],
        "annotations": {"list": []},
        "templating": {"list": []},
        "panels": panels,
    }


q = "histogram_quantile"
DASHBOARDS = {
    "sdsim-overview": dashboard("sdsim-overview", "sdsim / Overview", "Health of the whole system at a glance.", [
        ("Now", [
            panel("Instances up", [('sum by (job) (up{job=~"sdsim-.*"})', "{{job}}")], kind="stat"),
            panel("Gateway 5xx ratio (5 min)", [('sdsim:http_5xx:ratio_rate5m{job="sdsim-gateway"}', "5xx")], unit="percentunit", kind="stat"),
            panel("Open WebSockets", [("sum by (endpoint) (sdsim_websocket_sessions)", "{{endpoint}}")], kind="stat"),
        ]),
        ("Traffic", [
            panel("Gateway requests by status", [(f"sum by (status) (rate(sdsim_http_request_duration_seconds_count{{{API}}}[5m]))", "{{status}}")], unit="reqps", stack=True),
            panel("Gateway p99 by route", [('sdsim:http_request_seconds:p99_5m{job="sdsim-gateway"}', "{{route}}")], unit="s",
                  desc="Objective: 500 ms (alert SdsimHttpLatencyP99)."),
            panel("Instances in discovery", [("max by (service) (sdsim_discovery_instances)", "{{service}}")]),
            panel("gRPC server errors by service", [("sdsim:grpc_server_errors:ratio_rate5m", "{{service}}")], unit="percentunit"),
        ]),
        ("Trouble", [
            panel("Supervisor restarts (5 min)", [("sdsim:supervisor_restarts:increase5m > 0", "{{instance}} {{service}}/{{supervisor}}/{{child}}")]),
            panel("Open circuit breakers", [("sum by (service) (sdsim:circuit_breaker_open)", "{{service}}")]),
            panel("WebSocket closes by code", [("sdsim:websocket_closed:rate5m", "{{code}}")], unit="ops"),
            panel("Firing alerts", [('sum by (alertname) (ALERTS{alertstate="firing"})', "{{alertname}}")]),
        ]),
    ]),
    "sdsim-gateway": dashboard("sdsim-gateway", "sdsim / Gateway and WebSockets", "REST, WebSockets, events and HAProxy in front.", [
        ("REST", [
            panel("Requests by route", [(f"sum by (route) (rate(sdsim_http_request_duration_seconds_count{{{API}}}[5m]))", "{{route}}")], unit="reqps", stack=True),
            panel("Errors by route and status", [(f'sum by (route, status) (rate(sdsim_http_request_duration_seconds_count{{{API}, status=~"4..|5.."}}[5m]))', "{{status}} {{route}}")], unit="reqps"),
            panel("p50 by route", [(f"{q}(0.5, sum by (route, le) (rate(sdsim_http_request_duration_seconds_bucket{{{API}}}[5m])))", "{{route}}")], unit="s"),
            panel("p99 by route", [('sdsim:http_request_seconds:p99_5m{job="sdsim-gateway"}', "{{route}}")], unit="s"),
            panel("Rate limited (429) by route", [(f'sum by (route) (rate(sdsim_http_request_duration_seconds_count{{{API}, status="429"}}[5m]))', "{{route}}")], unit="reqps"),
            panel("Requests by gateway instance", [(f"sum by (instance) (rate(sdsim_http_request_duration_seconds_count{{{API}}}[5m]))", "{{instance}}")], unit="reqps"),
        ]),
        ("WebSockets", [
            panel("Open sessions", [("sum by (instance, endpoint) (sdsim_websocket_sessions)", "{{instance}} {{endpoint}}")]),
            panel("Frames sent by type", [("sum by (type) (rate(sdsim_websocket_frames_sent_total[5m]))", "{{type}}")], unit="ops"),
            panel("Closes by code", [("sdsim:websocket_closed:rate5m", "{{code}}")], unit="ops",
                  desc="1000 normal, 1001 going away (drain), 4001 unauthenticated, 4004 unknown run, 4008 too slow, 4009 token expired."),
            panel("Slow-client closes (4008, 10 min)", [('sum by (instance) (increase(sdsim_websocket_closed_total{code="4008"}[10m]))', "{{instance}}")]),
        ]),
        ("Events (Redis)", [
            panel("Published by outcome", [("sum by (outcome) (rate(sdsim_events_published_total[5m]))", "{{outcome}}")], unit="ops"),
            panel("Received", [("sum by (instance) (rate(sdsim_events_received_total[5m]))", "{{instance}}")], unit="ops"),
        ]),
        ("HAProxy", [
            panel("Gateways up in HAProxy", [('haproxy_backend_active_servers{proxy="gateways"}', "active")]),
            panel("Gateway server state", [('haproxy_server_status{proxy="gateways", state="UP"}', "{{server}}")]),
            panel("Denied by the rate limits", [('rate(haproxy_frontend_denied_connections_total{proxy="https_in"}[5m])', "connections"),
                                                ('rate(haproxy_frontend_requests_denied_total{proxy="https_in"}[5m])', "requests")], unit="ops"),
            panel("Client sessions", [('haproxy_frontend_current_sessions{proxy="https_in"}', "sessions")]),
        ]),
    ]),
    "sdsim-mesh": dashboard("sdsim-mesh", "sdsim / Mesh and pools", "Calls between services: pools, breakers, retries, discovery.", [
        ("Circuit breakers", [
            panel("State per target (0 closed, 1 open, 2 half-open)", [("max by (instance, service, exported_instance) (sdsim_circuit_breaker_state)", "{{instance}} -> {{service}} {{exported_instance}}")]),
            panel("Calls by outcome", [("sum by (service, outcome) (rate(sdsim_circuit_breaker_calls_total[5m]))", "{{service}} {{outcome}}")], unit="ops"),
            panel("Transitions", [("sum by (service, to) (increase(sdsim_circuit_breaker_transitions_total[5m]))", "{{service}} -> {{to}}")]),
            panel("Rejected by an open breaker", [("sdsim:circuit_breaker_rejected:rate5m", "{{instance}} {{service}}")], unit="ops"),
        ]),
        ("Channel pools", [
            panel("Channels per target", [("sum by (instance, service, exported_instance) (sdsim_pool_channels)", "{{instance}} -> {{service}} {{exported_instance}}")],
                  desc="At mesh.max_channels (20) the pool cannot grow (alert SdsimMeshPoolAtCap)."),
            panel("Channels per process (global cap)", [("sum by (instance) (sdsim_pool_channels_total)", "{{instance}}")]),
            panel("Callers waiting for a channel", [("sum by (instance, service) (sdsim_pool_queue)", "{{instance}} -> {{service}}")]),
            panel("Utilisation", [("max by (instance, service, exported_instance) (sdsim_pool_utilisation_ratio)", "{{instance}} -> {{service}} {{exported_instance}}")], unit="percentunit"),
            panel("Scale events", [("sum by (service, direction, trigger) (increase(sdsim_pool_scale_events_total[5m]))", "{{service}} {{direction}} ({{trigger}})")]),
            panel("Scale-up time p99", [(f"{q}(0.99, sum by (service, le) (rate(sdsim_pool_scale_up_seconds_bucket[5m])))", "{{service}}")], unit="s"),
            panel("Refused by the global cap / rebalanced", [("sdsim:pool_refused:rate5m", "refused {{service}}"),
                                                             ("sum by (from, to) (rate(sdsim_pool_rebalanced_total[5m]))", "rebalanced {{from}} -> {{to}}")], unit="ops"),
        ]),
        ("PostgreSQL pools", [
            panel("Connections per process", [("max by (instance, state) (sdsim_db_pool_connections{state=~\"open|idle|max\"})", "{{instance}} {{state}}")],
                  desc="database.pool_size is the max of each process that owns data (auth, project, simulation)."),
            panel("Queries waiting for a connection", [("max by (instance) (sdsim_db_pool_connections{state=\"waiting\"})", "{{instance}}")],
                  desc="Above zero for a minute: alert SdsimDbPoolWaiting."),
        ]),
        ("Calls", [
            panel("Client calls by target and outcome", [("sum by (target, outcome) (rate(sdsim_grpc_client_seconds_count[5m]))", "{{target}} {{outcome}}")], unit="ops"),
            panel("Client p99 by target", [(f"{q}(0.99, sum by (target, le) (rate(sdsim_grpc_client_seconds_bucket[5m])))", "{{target}}")], unit="s"),
            panel("Retries", [("sdsim:mesh_retries:rate5m", "{{service}} {{outcome}}")], unit="ops"),
            panel("Server calls in flight", [("sum by (instance, service) (sdsim_grpc_server_in_flight)", "{{instance}} {{service}}")]),
        ]),
        ("Discovery", [
            panel("Instances known", [("max by (instance, service) (sdsim_discovery_instances)", "{{instance}} sees {{service}}")]),
            panel("Changes", [("sum by (service, change) (increase(sdsim_discovery_changes_total[5m]))", "{{service}} {{change}}")]),
        ]),
    ]),
    "sdsim-auth": dashboard("sdsim-auth", "sdsim / Auth", "Sign-ups, logins, token checks and the auth service's handlers.", [
        ("Through the gateway", [
            panel("Logins by status", [('sum by (status) (rate(sdsim_http_request_duration_seconds_count{route="/api/auth/login"}[5m]))', "{{status}}")], unit="reqps",
                  desc="401 wrong credentials, 423/429 lockouts and rate limits."),
            panel("Auth routes rate limited (429)", [('sum by (route) (rate(sdsim_http_request_duration_seconds_count{route=~"/api/auth/.*", status="429"}[5m]))', "{{route}}")], unit="reqps"),
            panel("Registrations by status", [('sum by (status) (rate(sdsim_http_request_duration_seconds_count{route="/api/auth/register"}[5m]))', "{{status}}")], unit="reqps"),
            panel("Session checks by outcome", [("sum by (outcome) (rate(sdsim_auth_session_checks_total[5m]))", "{{outcome}}")], unit="ops"),
        ]),
        ("Auth service", [
            panel("Calls by method and code", [('sum by (method, code) (rate(sdsim_grpc_server_handled_seconds_count{service="auth"}[5m]))', "{{method}} {{code}}")], unit="ops"),
            panel("p99 by method", [('sdsim:grpc_server_seconds:p99_5m{service="auth"}', "{{method}}")], unit="s",
                  desc="Login, Register and password changes are bcrypt-bound (auth.bcrypt_cost)."),
            panel("In flight", [('sum by (instance) (sdsim_grpc_server_in_flight{service="auth"})', "{{instance}}")]),
            panel("Supervisor restarts (5 min)", [('sdsim:supervisor_restarts:increase5m{service="auth"}', "{{instance}} {{supervisor}}/{{child}}")]),
        ]),
    ]),
    "sdsim-simulation": dashboard("sdsim-simulation", "sdsim / Simulation runs", "Runs started, watched, failed; the simulation service's handlers.", [
        ("Runs", [
            panel("Run starts by code", [('sum by (code) (rate(sdsim_grpc_server_handled_seconds_count{service="simulation", method="StartSimulation"}[5m]))', "{{code}}")], unit="ops",
                  desc="ResourceExhausted: a user at simulation.max_runs_per_user."),
            panel("Starts refused (429) at the gateway", [('sum (rate(sdsim_http_request_duration_seconds_count{route="/api/simulations", method="POST", status="429"}[5m]))', "429")], unit="reqps"),
            panel("Runs ended (15 min)", [('sum by (outcome) (increase(sdsim_simulation_runs_finished_total[15m]))', "{{outcome}}")]),
            panel("Run controls by method", [('sum by (method) (rate(sdsim_grpc_server_handled_seconds_count{service="simulation", method!~"StartSimulation|HealthCheck"}[5m]))', "{{method}}")], unit="ops"),
        ]),
        ("Watchers", [
            panel("Live run watchers", [('sum by (instance) (sdsim_websocket_sessions{endpoint="/ws/simulation"})', "{{instance}}")]),
            panel("Frames sent to watchers", [('sum by (instance) (rate(sdsim_websocket_frames_sent_total{type="event"}[5m]))', "{{instance}}")], unit="ops"),
        ]),
        ("Simulation service", [
            panel("p99 by method", [('sdsim:grpc_server_seconds:p99_5m{service="simulation"}', "{{method}}")], unit="s"),
            panel("Server errors", [('sdsim:grpc_server_errors:ratio_rate5m{service="simulation"}', "errors")], unit="percentunit"),
        ]),
    ]),
}

if __name__ == "__main__":
    out = os.path.join(HERE, "dashboards")
    os.makedirs(out, exist_ok=True)
    for name, d in DASHBOARDS.items():
        with open(os.path.join(out, name + ".json"), "w") as f:
            json.dump(d, f, indent=2)
            f.write("\n")
        print(os.path.join(out, name + ".json"))
