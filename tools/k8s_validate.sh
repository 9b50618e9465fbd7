#!/usr/bin/env bash
# Checks the Kubernetes manifests under ops/k8s: every built-in resource against the Kubernetes schemas
# (kubernetes-validate from PyPI, strict: unknown fields are errors), the KEDA objects for the fields this project
# relies on (KEDA's CRDs have no schema there), and the embedded Prometheus scrape config.
# Installs kubernetes-validate into .build/venv-k8s on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.build/venv-k8s
if [[ ! -x $venv/bin/kubernetes-validate ]]; then
    python3 -m venv "$venv" >/dev/null
    "$venv/bin/pip" install -q kubernetes-validate
fi
"$venv/bin/kubernetes-validate" --strict --quiet ops/k8s/migrate-job.yaml ops/k8s/worker-deployment.yaml \
    ops/k8s/worker-deployment-cuda.yaml ops/k8s/prometheus-scrape.yaml
"$venv/bin/python" - <<'PY'
import sys, yaml
docs = list(yaml.safe_load_all(open("ops/k8s/keda-scaledobject.yaml")))
kinds = {d["kind"]: d for d in docs}
scaled, auth = kinds["ScaledObject"], kinds["TriggerAuthentication"]
deployment = yaml.safe_load(open("ops/k8s/worker-deployment.yaml"))
assert scaled["apiVersion"] == auth["apiVersion"] == "keda.sh/v1alpha1"
assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"], "ScaledObject targets the worker"
trigger = scaled["spec"]["triggers"][0]
assert trigger["type"] == "rabbitmq" and trigger["metadata"]["mode"] == "QueueLength"
assert trigger["metadata"]["queueName"].startswith("infmllm.model."), "the per-model queue"
assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
assert auth["spec"]["secretTargetRef"][0]["parameter"] == "host"
# One trigger per lane, summed by the scaling modifier: every name in the formula is a trigger's, and each lane once.
triggers = scaled["spec"]["triggers"]
lanes = {t["name"]: t["metadata"]["queueName"] for t in triggers}
model = trigger["metadata"]["queueName"].split(":")[0]
assert sorted(lanes.values()) == sorted([model, model + ":high", model + ":low"]), lanes
modifier = scaled["spec"]["advanced"]["scalingModifiers"]
assert sorted(modifier["formula"].replace("+", " ").split()) == sorted(lanes), modifier["formula"]
assert modifier["metricType"] == "AverageValue" and float(modifier["target"]) > 0
print("keda-scaledobject.yaml: fields checked")
PY
# Debian's promtool is built without Kubernetes service discovery, so the embedded scrape config is checked here.
"$venv/bin/python" - <<'PY'
import yaml
config = yaml.safe_load(yaml.safe_load(open("ops/k8s/prometheus-scrape.yaml"))["data"]["infmllm-scrape.yml"])
job = config["scrape_configs"][0]
assert job["kubernetes_sd_configs"][0]["role"] == "pod"
kept = {tuple(r["source_labels"]): r for r in job["relabel_configs"] if r.get("action") == "keep"}
assert kept[("__meta_kubernetes_pod_annotation_prometheus_io_scrape",)]["regex"] == "true"
print("prometheus-scrape.yaml: scrape config checked")
PY
echo "k8s manifests: valid"
