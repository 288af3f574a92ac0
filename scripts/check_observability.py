#!/usr/bin/env python3
"""Checks the observability files offline: every metric that the Grafana dashboard and the alerting
rules in k8s/observability/ query, and every metric the Swift code records, is in the catalogue
(WardenMetrics.catalogue, whose help texts the services export); the rules pass `promtool check rules`.

Usage: check_observability.py REPOSITORY_ROOT
"""
import json
import pathlib
import re
import shutil
import subprocess
import sys

import yaml

root = pathlib.Path(sys.argv[1])
problems = []
catalogue_file = root / "Shared/WardenServiceKit/Observability/WardenMetrics.swift"
catalogue = set(re.findall(r'^\s*"(warden_[a-z0-9_]+)":', catalogue_file.read_text(), re.MULTILINE))
if not catalogue:
    problems.append(f"{catalogue_file}: no catalogue found")


def metric_names(expression: str) -> set:
    names = set()
    for name in re.findall(r"\b(warden_[a-z0-9_]+)", expression):
        for suffix in ("_bucket", "_count", "_sum"):
            if name.endswith(suffix) and name[: -len(suffix)] in catalogue:
                name = name[: -len(suffix)]
        names.add(name)
    return names


dashboard_file = root / "k8s/observability/warden-dashboard.json"
dashboard = json.loads(dashboard_file.read_text())
queries = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
if not queries:
    problems.append(f"{dashboard_file}: no queries")
for query in queries:
    for name in metric_names(query) - catalogue:
        problems.append(f"{dashboard_file}: queries {name}, which no service exports")

rules_file = root / "k8s/observability/warden-alerts.yaml"
rules = yaml.safe_load(rules_file.read_text())
for group in rules["groups"]:
    for rule in group["rules"]:
        for name in metric_names(rule["expr"]) - catalogue:
            problems.append(f"{rules_file}: {rule['alert']} uses {name}, which no service exports")

recorded = set()
for source in list((root / "Services").rglob("*.swift")) + list((root / "Shared").rglob("*.swift")):
    for name in re.findall(r'label: "(warden_[a-z0-9_]+)"', source.read_text()):
        recorded.add(name)
        if name not in catalogue:
            problems.append(f"{source}: records {name}, which is not in WardenMetrics.catalogue (no help text)")
for name in sorted(catalogue - recorded):
    problems.append(f"{catalogue_file}: {name} is in the catalogue but nothing records it")

promtool = shutil.which("promtool")
if promtool is None:
    problems.append("promtool is not installed (Debian package prometheus)")
else:
    checked = subprocess.run([promtool, "check", "rules", str(rules_file)], capture_output=True, text=True)
    if checked.returncode != 0:
        problems.append(f"promtool check rules {rules_file}:\n{checked.stdout}{checked.stderr}")

for problem in problems:
    print(problem, file=sys.stderr)
print(f"observability: {len(queries)} dashboard queries, {sum(len(g['rules']) for g in rules['groups'])} alerting rules, "
      f"{len(catalogue)} metrics in the catalogue: {'ok' if not problems else f'{len(problems)} problems'}")
sys.exit(1 if problems else 0)
