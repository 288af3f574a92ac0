"""Cross-reference checks of compose.yaml and k8s/ that a schema cannot express.

Prints one line per problem and "deploy: N passed, N failed"; exits non-zero on any problem.
"""
import re
import filecmp
import pathlib
import subprocess
import sys

import yaml

root = pathlib.Path(sys.argv[1])
problems: list[str] = []
checks = 0
SERVICES = ["gateway", "vault", "policy", "approvals", "audit"]
# Secrets the operator creates before applying k8s/ (README, "Kubernetes").
EXTERNAL_K8S_SECRETS = {"warden-postgres", "warden-admin", "warden-vault", "warden-nats"}


def check(ok: bool, problem: str) -> None:
    global checks
    checks += 1
    if not ok:
        problems.append(problem)


# compose.yaml
compose = yaml.safe_load((root / "compose.yaml").read_text())
services = compose.get("services", {})
volumes = set((compose.get("volumes") or {}).keys())
secrets = set((compose.get("secrets") or {}).keys())
for name in SERVICES:
    check(name in services, f"compose: service {name} is missing")
for name, service in services.items():
    depends = service.get("depends_on") or {}
    for dependency in (depends if isinstance(depends, list) else depends.keys()):
        check(dependency in services, f"compose: {name} depends on unknown service {dependency}")
    for volume in service.get("volumes") or []:
        source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
        if source.startswith((".", "/")):
            check((root / source).exists(), f"compose: {name} mounts missing path {source}")
        else:
            check(source in volumes, f"compose: {name} uses undeclared volume {source}")
    for secret in service.get("secrets") or []:
        secret_name = secret if isinstance(secret, str) else secret.get("source")
        check(secret_name in secrets, f"compose: {name} uses undeclared secret {secret_name}")
    if "healthcheck" in service and name in SERVICES:
        check("warden" in " ".join(service["healthcheck"]["test"]), f"compose: {name} health check does not use the warden probe")
for name in SERVICES:
    env = services[name].get("environment", {})
    check(any(k.startswith("WARDEN_POSTGRES_PASSWORD") for k in env), f"compose: {name} has no database password")
    check(env.get("WARDEN_NATS_PASSWORD_FILE") == f"/run/secrets/nats_password_{name}", f"compose: {name} has no NATS user of its own")
check(services["gateway"].get("ports", [""])[0].startswith("127.0.0.1:"), "compose: the gateway must publish on loopback by default")
dockerfile = (root / "Dockerfile").read_text()
for path in ["Shared", "Services", "Benchmarks", "Tests", "Package.swift"]:
    check((root / path).exists() and path in dockerfile, f"Dockerfile: {path} is not copied or does not exist")
# SwiftPM builds only the last of several --product options (the others silently not at all).
for instruction in dockerfile.replace("\\\n", " ").splitlines():
    check(instruction.count("--product") <= 1, f"Dockerfile: one swift build names several products: {instruction.strip()[:80]}")
product_lists = re.findall(r"for p in ([^;]+);", dockerfile)
check(len(product_lists) == 2 and product_lists[0].split() == product_lists[1].split(),
      "Dockerfile: the products built and the binaries copied differ")
# Every service (Services/<Name>/Main is warden-<name>) and the CLI (Services/CLI is warden).
executables = {"warden" if d.name == "CLI" else f"warden-{d.name.lower()}" for d in (root / "Services").iterdir() if (d / "Main").is_dir()}
check(product_lists and set(product_lists[0].split()) == executables,
      f"Dockerfile: the image's binaries {sorted(product_lists[0].split()) if product_lists else []} are not every service and the CLI {sorted(executables)}")

# k8s/
kustomization = yaml.safe_load((root / "k8s" / "kustomization.yaml").read_text())
documents = []
for resource in kustomization["resources"]:
    path = root / "k8s" / resource
    check(path.exists(), f"k8s: kustomization lists missing {resource}")
    if path.exists():
        documents += [(resource, d) for d in yaml.safe_load_all(path.read_text()) if d]
generated_config_maps = {g["name"] for g in kustomization.get("configMapGenerator", [])}
for generator in kustomization.get("configMapGenerator", []):
    for file in generator.get("files", []):
        copy = root / "k8s" / file
        if file.startswith("observability/"):
            # Kept only here (checked by scripts/check_observability.py).
            check(copy.exists(), f"k8s: {file} is missing")
            continue
        original = next((root / folder / file for folder in ["scripts", "deploy"] if (root / folder / file).exists()), root / "scripts" / file)
        check(copy.exists() and original.exists() and filecmp.cmp(copy, original, shallow=False),
              f"k8s: {file} differs from {original.relative_to(root)} (copy it again)")

kinds = {}
for resource, document in documents:
    kinds.setdefault(document["kind"], {})[document["metadata"]["name"]] = document
config_maps = set(kinds.get("ConfigMap", {})) | generated_config_maps
secrets_defined = set(kinds.get("Secret", {})) | EXTERNAL_K8S_SECRETS

for name in SERVICES:
    check(f"warden-{name}" in kinds.get("Deployment", {}), f"k8s: Deployment warden-{name} is missing")
    containers = kinds.get("Deployment", {}).get(f"warden-{name}", {}).get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])
    nats_password = next((e for e in containers[0].get("env", []) if e.get("name") == "WARDEN_NATS_PASSWORD"), {})
    check(nats_password.get("valueFrom", {}).get("secretKeyRef", {}).get("key") == f"{name}-password",
          f"k8s: warden-{name} has no NATS user of its own")


def walk(node, found):
    if isinstance(node, dict):
        if "configMapKeyRef" in node:
            found.append(("configmap", node["configMapKeyRef"]["name"]))
        if "configMapRef" in node:
            found.append(("configmap", node["configMapRef"]["name"]))
        if "secretKeyRef" in node:
            found.append(("secret", node["secretKeyRef"]["name"]))
        if "configMap" in node and isinstance(node["configMap"], dict):
            found.append(("configmap", node["configMap"]["name"]))
        for value in node.values():
            walk(value, found)
    elif isinstance(node, list):
        for value in node:
            walk(value, found)


pod_labels = []
for kind in ("Deployment", "StatefulSet", "Job"):
    for name, document in kinds.get(kind, {}).items():
        template = document["spec"]["template"]
        labels = template["metadata"].get("labels", {})
        pod_labels.append(labels)
        selector = document["spec"].get("selector", {}).get("matchLabels")
        if selector:
            check(all(labels.get(k) == v for k, v in selector.items()), f"k8s: {kind} {name} selector does not match its pod labels")
        references = []
        walk(template, references)
        for what, ref in references:
            known = config_maps if what == "configmap" else secrets_defined
            check(ref in known, f"k8s: {kind} {name} references unknown {what} {ref}")
        for container in template["spec"]["containers"]:
            security = container.get("securityContext", {})
            check(security.get("allowPrivilegeEscalation") is False, f"k8s: {kind} {name} allows privilege escalation")
for name, service in kinds.get("Service", {}).items():
    selector = service["spec"]["selector"]
    check(any(all(l.get(k) == v for k, v in selector.items()) for l in pod_labels), f"k8s: Service {name} selects no pods")

# Kubernetes schemas for every document.
venv_validate = pathlib.Path(sys.executable).parent / "kubernetes-validate"
files = [str(root / "k8s" / r) for r in kustomization["resources"]]
result = subprocess.run([str(venv_validate), "--strict", *files], capture_output=True, text=True)
check(result.returncode == 0, "k8s: schema validation failed:\n" + result.stdout + result.stderr)

for problem in problems:
    print(problem)
print(f"deploy: {checks - len(problems)} passed, {len(problems)} failed")
sys.exit(1 if problems else 0)
