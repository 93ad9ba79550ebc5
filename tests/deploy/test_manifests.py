"""The Kubernetes manifests, Prometheus rules and Grafana dashboard under deploy/, checked
offline: every Kubernetes object validates strictly against the Kubernetes 1.37 schemas
(kubernetes-validate); KEDA's objects, whose CRDs those schemas do not hold, get a structural
check of their own; alerts and panels only query series the platform exports, without a
per-store label."""

from __future__ import annotations

import json
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from django.conf import settings

DEPLOY = Path(settings.BASE_DIR) / "deploy"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.37.0"
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}


def _documents() -> list[tuple[str, dict]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append((path.name, document))
    return found


DOCUMENTS = _documents()


def _by_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for _, d in DOCUMENTS if d["kind"] == kind}


KUBERNETES_OBJECTS = [d for _, d in DOCUMENTS if d["kind"] not in KEDA_KINDS]


@pytest.mark.parametrize(
    "document",
    KUBERNETES_OBJECTS,
    ids=[f"{d['kind']}/{d['metadata']['name']}" for d in KUBERNETES_OBJECTS],
)
def test_every_kubernetes_object_validates_strictly(document):
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_strict_validation_refuses_an_unknown_field():
    web = dict(_by_kind("Deployment")["shelfsense-web"])
    web["spec"] = {**web["spec"], "replicaz": 3}

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, KUBERNETES_VERSION, strict=True)


def test_kustomization_applies_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}

    assert set(kustomization["resources"]) == files


def test_autoscalers_and_budgets_point_at_existing_deployments():
    deployments = _by_kind("Deployment")
    pod_labels = {
        name: d["spec"]["template"]["metadata"]["labels"] for name, d in deployments.items()
    }
    for hpa in _by_kind("HorizontalPodAutoscaler").values():
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"] in deployments) == ("Deployment", True)
        assert "replicas" not in deployments[target["name"]]["spec"]
    for pdb in _by_kind("PodDisruptionBudget").values():
        wanted = pdb["spec"]["selector"]["matchLabels"]
        assert any(wanted.items() <= labels.items() for labels in pod_labels.values()), pdb
    assert "shelfsense-beat" not in {
        p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for p in _by_kind("PodDisruptionBudget").values()
    }


def test_web_pods_wait_for_the_release_migrations():
    for name in ("shelfsense-web", "shelfsense-ws", "shelfsense-worker"):
        spec = _by_kind("Deployment")[name]["spec"]["template"]["spec"]
        commands = [" ".join(c["command"]) for c in spec.get("initContainers", [])]
        assert any("setup_platform --check" in c for c in commands), name
    job = _by_kind("Job")["shelfsense-migrate"]
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "python",
        "manage.py",
        "setup_platform",
    ]


# KEDA (keda.sh/v1alpha1): the fields these manifests use, checked by hand.
SCALED_OBJECT_SPEC = {
    "scaleTargetRef",
    "minReplicaCount",
    "maxReplicaCount",
    "pollingInterval",
    "cooldownPeriod",
    "triggers",
}
REDIS_TRIGGER_METADATA = {"listName", "listLength", "databaseIndex", "activationListLength"}


def test_keda_objects_are_well_formed_and_scale_the_worker_on_its_queues():
    scaled = _by_kind("ScaledObject")
    auths = _by_kind("TriggerAuthentication")
    worker = _by_kind("Deployment")["shelfsense-worker"]
    command = worker["spec"]["template"]["spec"]["containers"][0]["command"]
    consumed = set(command[command.index("-Q") + 1].split(","))

    assert set(scaled) == {"shelfsense-worker"}
    for obj in [*scaled.values(), *auths.values()]:
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
        assert set(obj) == {"apiVersion", "kind", "metadata", "spec"}
    spec = scaled["shelfsense-worker"]["spec"]
    assert set(spec) <= SCALED_OBJECT_SPEC
    assert spec["scaleTargetRef"] == {"name": "shelfsense-worker"}
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    lists = set()
    for trigger in spec["triggers"]:
        assert trigger["type"] == "redis"
        assert trigger["authenticationRef"]["name"] in auths
        assert set(trigger["metadata"]) <= REDIS_TRIGGER_METADATA
        assert int(trigger["metadata"]["listLength"]) > 0
        lists.add(trigger["metadata"]["listName"])
    # every queue the worker consumes (and no other) drives its scaling
    assert lists == consumed
    for auth in auths.values():
        for ref in auth["spec"]["secretTargetRef"]:
            assert set(ref) == {"parameter", "name", "key"}
            assert ref["parameter"] in {"address", "password", "host", "port", "username"}


# --- Prometheus and Grafana ------------------------------------------------------------------
OUR_SERIES = {
    "shelfsense_http_requests_total",
    "shelfsense_http_request_duration_seconds_bucket",
    "shelfsense_celery_queue_length",
    "shelfsense_platform_events_total",
    "shelfsense_redis_up",
    "shelfsense_postgres_up",
}
PER_STORE_LABELS = re.compile(r"\b(store|schema|tenant|schema_name)\b\s*(=|!=|=~|!~|,|\))")


def _exprs() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((DEPLOY / "grafana" / "shelfsense-platform.json").read_text())
    exprs += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    return exprs


def test_alert_rules_have_a_severity_and_a_summary():
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]

    assert {rule["labels"]["severity"] for rule in alerts} <= {"warning", "critical"}
    assert all(rule["annotations"]["summary"] for rule in alerts)
    names = {rule["alert"] for rule in alerts}
    for needed in ("QueueBacklog", "TrainingFailures", "WebhookFailures", "RedisDown"):
        assert f"ShelfSense{needed}" in names
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]


def test_alerts_and_panels_query_only_our_series_and_no_per_store_label():
    for expr in _exprs():
        series = set(re.findall(r"\bshelfsense_[a-z_]+", expr))
        assert series <= OUR_SERIES, expr
        assert not PER_STORE_LABELS.search(expr), expr


def test_every_series_the_board_uses_is_exported(db, client, settings):
    # given: metrics on
    settings.METRICS_TOKEN = "board-token"

    body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer board-token").content.decode()

    exported = set(re.findall(r"^(shelfsense_[a-z_]+)", body, flags=re.MULTILINE))
    # the histogram bucket and the request counter appear once a request was counted
    assert (
        OUR_SERIES
        - {
            "shelfsense_http_requests_total",
            "shelfsense_http_request_duration_seconds_bucket",
        }
        <= exported
    )
    assert "shelfsense_redis_up 1.0" in body
    assert "shelfsense_postgres_up 1.0" in body
    labels = set(re.findall(r"^shelfsense_[a-z_]+\{([a-z_]+)=", body, flags=re.MULTILINE))
    assert labels <= {"method", "area", "queue", "event", "le"}
