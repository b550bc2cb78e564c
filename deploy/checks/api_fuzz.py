#!/usr/bin/env python3
"""The live stack's side of deploy/checks/api_fuzz.sh (standard library only).

    api_fuzz.py seed BASE WORK
        Registers and logs in a user through the REST API, creates what the fuzzer should find
        (projects, share links, runs) and writes WORK/openapi.json (the document) and
        WORK/schemathesis.toml: Schemathesis's configuration with the user's access token as
        the Authorization header of every request (not on a command line) and those ids as
        dictionaries, so that about half the generated requests of an operation with an id in
        its path name one that exists (200 answers get their schemas checked, not only 404s).
        Projects that DELETE, purge, restore and owner transfer may break are kept apart from
        the ones the other operations read.

    api_fuzz.py summary JUNIT
        A short summary of Schemathesis's JUnit report: operations run, failed, errored.
"""

import json
import secrets
import sys
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET


def call(base, method, path, body=None, token=None, ok=(200, 201, 202, 204)):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=20) as res:
            status, raw = res.status, res.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    if status not in ok:
        raise SystemExit(f"api_fuzz seed: {method} {path} -> {status}: {raw[:500]!r}")
    return json.loads(raw) if raw else {}


def toml_str(s):
    return json.dumps(str(s))  # a JSON string is a valid TOML basic string


def seed(base, work):
    email = f"fuzz-{secrets.token_hex(6)}@example.com"
    password = "Fz-" + secrets.token_urlsafe(18)
    call(base, "POST", "/api/auth/register",
         {"email": email, "password": password, "first_name": "Fuzz", "last_name": "Check"})
    login = call(base, "POST", "/api/auth/login", {"email": email, "password": password})
    token = login["access_token"]

    templates = [t["id"] for t in call(base, "GET", "/api/templates", token=token)["templates"]]

    def project(name, **extra):
        return call(base, "POST", "/api/projects", {"name": name, **extra}, token=token)["project"]["id"]

    # Read and changed by most operations; one with a runnable design when there is a template.
    first = {"template_id": templates[0]} if templates else {}
    projects = [project("fuzz main", **first), project("fuzz empty", description="nothing yet")]
    # For the operations that may take a project away (trash, purge, owner transfer).
    scratch = [project("fuzz scratch 1"), project("fuzz scratch 2")]

    # Share links: one the fuzzer opens and forks, one it may revoke.
    open_link = call(base, "POST", f"/api/projects/{projects[0]}/links", {"access": "view"}, token=token)
    spare_link = call(base, "POST", f"/api/projects/{projects[0]}/links", {"access": "fork"}, token=token)

    # Runs of the saved design (when it can run): one left alone to read, one to control.
    runs = []
    if templates:
        for _ in range(2):
            started = call(base, "POST", "/api/simulations", {"project_id": projects[0]}, token=token)
            runs.append(started["simulation"]["id"])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status = call(base, "GET", f"/api/simulations/{runs[0]}", token=token)["simulation"]["status"]
            if status not in ("pending", "running"):
                break
            time.sleep(0.2)
    if not runs:
        runs = ["00000000-0000-0000-0000-000000000000"]  # keeps the dictionaries non-empty

    with open(f"{work}/openapi.json", "w") as f:  # what was fuzzed, for SDSIM_KEEP_LOGS
        json.dump(call(base, "GET", "/api/openapi.json"), f, indent=1)

    half = 0.5
    dictionaries = {
        "projects": projects,
        "scratch": scratch,
        "templates": templates or ["none"],
        "link_tokens": [open_link["token"]],
        "link_ids": [spare_link["id"]],
        "versions": [1],
        "runs": runs,
        "read_runs": runs[:1],
    }

    def binding(name, p=half):
        return f"{{ dictionary = {toml_str(name)}, probability = {p} }}"

    lines = [
        "# Written by deploy/checks/api_fuzz.py seed for one run: the user's token, ids that exist.",
        "",
        # Every request signed in (the operations that need no token ignore it).
        f"headers = {{ Authorization = {toml_str('Bearer ' + token)} }}",
        "",
    ]
    for name, values in dictionaries.items():
        vals = ", ".join(str(v) if isinstance(v, int) else toml_str(v) for v in values)
        lines.append(f"[dictionaries.{name}]\nvalues = [{vals}]\n")
    # Query parameters, wherever they appear.
    lines += [
        "[parameters]",
        f'"query.project_id" = {binding("projects")}',
        f'"query.a" = {binding("read_runs")}',
        f'"query.b" = {binding("runs")}',
        "",
    ]

    # First match wins for an operation's parameters, so the narrow filters come first.
    def op(filters, params):
        out = ["[[operations]]"]
        for key, value in filters.items():
            if isinstance(value, list):
                value = "[" + ", ".join(toml_str(v) for v in value) + "]"
            else:
                value = toml_str(value)
            out.append(f"{key} = {value}")
        out.append("parameters = { " + ", ".join(f'"{k}" = {v}' for k, v in params.items()) + " }")
        return "\n".join(out) + "\n"

    destructive = [
        "DELETE /api/projects/{id}",
        "POST /api/projects/{id}/restore",
        "POST /api/projects/{id}/purge",
        "POST /api/projects/{id}/owner",
    ]
    lines.append(op({"include-name": destructive}, {"path.id": binding("scratch")}))
    lines.append(op({"include-name": "DELETE /api/projects/{id}/links/{link_id}"},
                    {"path.id": binding("projects"), "path.link_id": binding("link_ids")}))
    lines.append(op({"include-path-regex": r"^/api/projects/\{id\}/versions/\{version\}$"},
                    {"path.id": binding("projects"), "path.version": binding("versions")}))
    lines.append(op({"include-path-regex": r"^/api/projects/\{id\}"},
                    {"path.id": binding("projects")}))
    lines.append(op({"include-path-regex": r"^/api/templates/\{id\}$"},
                    {"path.id": binding("templates")}))
    lines.append(op({"include-path-regex": r"^/api/links/\{token\}"},
                    {"path.token": binding("link_tokens")}))
    # Reads of a run see the one left alone; controls (stop, pause, speed, chaos, delete...)
    # get either.
    lines.append(op({"include-path-regex": r"^/api/simulations/\{id\}", "include-method": "GET"},
                    {"path.id": binding("read_runs")}))
    lines.append(op({"include-path-regex": r"^/api/simulations/\{id\}"},
                    {"path.id": binding("runs")}))
    lines.append(op({"include-name": "POST /api/simulations"},
                    {"body.project_id": binding("projects", 0.3)}))

    with open(f"{work}/schemathesis.toml", "w") as f:
        f.write("\n".join(lines))
    print(f"user {email}; projects {len(projects)}+{len(scratch)} scratch; "
          f"templates {len(templates)}; runs {len(runs) if templates else 0}; links 2")


def summary(path):
    root = ET.parse(path).getroot()
    cases = root.iter("testcase")
    total = failed = errored = skipped = 0
    bad = []
    for case in cases:
        total += 1
        if case.find("failure") is not None:
            failed += 1
            bad.append(("failed", case.get("name")))
        elif case.find("error") is not None:
            errored += 1
            bad.append(("error", case.get("name")))
        elif case.find("skipped") is not None:
            skipped += 1
    print(f"api fuzz: {total} operations, {total - failed - errored - skipped} passed, "
          f"{failed} failed, {errored} errored, {skipped} skipped")
    for kind, name in bad:
        print(f"  {kind}: {name}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "seed":
        seed(sys.argv[2].rstrip("/"), sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "summary":
        summary(sys.argv[2])
    else:
        raise SystemExit(__doc__)
