#!/usr/bin/env python3
"""Calls grpc.health.v1 and server reflection on sdsim gRPC ports with the stock Python
gRPC client (grpcio, grpcio-health-checking, grpcio-reflection from PyPI), the way any
off-the-shelf tool would.

    check.py SERVICE=HOST:PORT [SERVICE=HOST:PORT ...]

e.g. `check.py auth=127.0.0.1:9000 gateway=127.0.0.1:8001`. For each port it checks that
  - Health/Check for "" (the server) and for the service's full name answers SERVING;
  - reflection lists the service, grpc.health.v1.Health and the reflection service;
  - the service's descriptor resolves through reflection, with its RPCs (HealthCheck among them).
Prints one JSON line per port; exits 1 if any check fails.
"""
import json
import sys

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

FULL_NAMES = {
    "gateway": "gateway.GatewayService",
    "auth": "auth.AuthService",
    "project": "project.ProjectService",
    "simulation": "simulation.SimulationService",
}


def check(service: str, addr: str) -> dict:
    full = FULL_NAMES[service]
    out = {"service": service, "addr": addr, "ok": False}
    with grpc.insecure_channel(addr) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        health = health_pb2_grpc.HealthStub(channel)
        statuses = {}
        for name in ("", full):
            resp = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            statuses[name or "<server>"] = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
        out["health"] = statuses
        try:
            health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
            out["unknown_service"] = "answered"
        except grpc.RpcError as e:
            out["unknown_service"] = e.code().name

        db = ProtoReflectionDescriptorDatabase(channel)
        services = sorted(db.get_services())
        out["reflection_services"] = services
        pool = DescriptorPool(db)
        desc = pool.FindServiceByName(full)
        out["methods"] = sorted(m.name for m in desc.methods)

    out["ok"] = (
        all(s == "SERVING" for s in statuses.values())
        and out["unknown_service"] == "NOT_FOUND"
        and full in services
        and "grpc.health.v1.Health" in services
        and any(s.startswith("grpc.reflection.") for s in services)
        and "HealthCheck" in out["methods"]
    )
    return out


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    failed = False
    for arg in argv[1:]:
        service, _, addr = arg.partition("=")
        if service not in FULL_NAMES or not addr:
            print(f"bad argument {arg!r}: expected SERVICE=HOST:PORT", file=sys.stderr)
            return 2
        try:
            result = check(service, addr)
        except Exception as e:  # report every port, then fail
            result = {"service": service, "addr": addr, "ok": False, "error": repr(e)}
        failed |= not result["ok"]
        print(json.dumps(result, sort_keys=True), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
