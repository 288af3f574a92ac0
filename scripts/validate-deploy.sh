#!/usr/bin/env bash
# Validates compose.yaml and k8s/ offline (there is no Docker engine or cluster here): the compose
# file against the Compose Specification schema, the manifests against Kubernetes' schemas, and
# cross-references in both (scripts/check_deploy.py). Tools live in .venv (created on first use).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
if [ ! -x "$venv/bin/check-jsonschema" ] || [ ! -x "$venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check check-jsonschema kubernetes-validate pyyaml
fi
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$root/compose.yaml"
"$venv/bin/python" "$root/scripts/check_deploy.py" "$root"
"$venv/bin/python" "$root/scripts/check_observability.py" "$root"
