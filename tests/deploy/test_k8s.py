"""deploy/k8s/, parsed: every manifest well formed, the API and workers wired to the
ConfigMap and Secret, probed, scraped, sized and run as a non-root user."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from deploy_contract import DEPLOY, load_yaml_documents, mapping

from arqd.core.errors import ConfigurationError
from arqd.core.settings import Settings

K8S = DEPLOY / "k8s"
NAMESPACE = "arqd"


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.fixture(scope="module")
def objects() -> dict[tuple[str, str], dict[str, Any]]:
    """Every object by (kind, name)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in manifest_files():
        for doc in load_yaml_documents(path):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in found, f"{key} is defined twice"
            found[key] = mapping(doc, f"{path.name}: {key}")
    return found


def pod_spec(objects: dict[tuple[str, str], dict[str, Any]], name: str) -> dict[str, Any]:
    return mapping(objects["Deployment", name]["spec"]["template"]["spec"], name)


def container(objects: dict[tuple[str, str], dict[str, Any]], name: str) -> dict[str, Any]:
    (only,) = pod_spec(objects, name)["containers"]
    return mapping(only, name)


def settings_env(objects: dict[tuple[str, str], dict[str, Any]]) -> dict[str, str]:
    """The environment envFrom gives arqd's pods."""
    config = objects["ConfigMap", "arqd-config"]["data"]
    secret = objects["Secret", "arqd-secrets"]["stringData"]
    return {**config, **secret}


def test_every_manifest_is_namespaced(objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    for (kind, name), obj in objects.items():
        assert obj["apiVersion"], name
        if kind != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE, f"{kind}/{name}"
    assert ("Namespace", NAMESPACE) in objects


def test_kustomization_applies_every_manifest() -> None:
    kustomization = mapping(load_yaml_documents(K8S / "kustomization.yaml")[0], "kustomization")
    assert kustomization["kind"] == "Kustomization"
    assert kustomization["namespace"] == NAMESPACE
    assert sorted(kustomization["resources"]) == [p.name for p in manifest_files()]
    assert [image["name"] for image in kustomization["images"]] == ["arqd"]


def test_config_is_not_secret_and_secret_is_not_config(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    config = objects["ConfigMap", "arqd-config"]["data"]
    secret = objects["Secret", "arqd-secrets"]
    assert set(secret["stringData"]) == {"API_KEYS", "REDIS_URL"}
    assert not {"API_KEYS", "REDIS_URL"} & set(config)
    assert all(isinstance(value, str) for value in config.values()), "ConfigMap values are strings"
    assert config["ARQD_HOST"] == "0.0.0.0"
    assert config["METRICS_PORT"] == "9090"


def test_arqd_accepts_the_environment(objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    try:
        Settings.from_env(settings_env(objects))
    except ConfigurationError as exc:
        pytest.fail(f"arqd would refuse to start with the ConfigMap and Secret: {exc}")


def test_redis_url_points_at_the_redis_service(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    url = urlsplit(objects["Secret", "arqd-secrets"]["stringData"]["REDIS_URL"])
    service = objects["Service", url.hostname or ""]
    assert service["spec"]["ports"][0]["port"] == url.port


@pytest.mark.parametrize("name", ["arqd-api", "arqd-worker"])
def test_pods_read_config_and_secret(
    objects: dict[tuple[str, str], dict[str, Any]], name: str
) -> None:
    sources = container(objects, name)["envFrom"]
    refs = {(kind, ref["name"]) for source in sources for kind, ref in source.items()}
    assert refs == {("configMapRef", "arqd-config"), ("secretRef", "arqd-secrets")}


@pytest.mark.parametrize("name", ["arqd-api", "arqd-worker"])
def test_pods_run_as_non_root(objects: dict[tuple[str, str], dict[str, Any]], name: str) -> None:
    pod = pod_spec(objects, name)["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] != 0
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    own = container(objects, name)["securityContext"]
    assert own["allowPrivilegeEscalation"] is False
    assert own["readOnlyRootFilesystem"] is True
    assert own["capabilities"]["drop"] == ["ALL"]


@pytest.mark.parametrize("name", ["arqd-api", "arqd-worker"])
def test_pods_have_resources(objects: dict[tuple[str, str], dict[str, Any]], name: str) -> None:
    resources = container(objects, name)["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]


@pytest.mark.parametrize(("name", "port"), [("arqd-api", "3000"), ("arqd-worker", "9090")])
def test_pods_are_scraped(
    objects: dict[tuple[str, str], dict[str, Any]], name: str, port: str
) -> None:
    annotations = objects["Deployment", name]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == port
    assert annotations["prometheus.io/path"] == "/metrics"
    ports = {p["containerPort"] for p in container(objects, name)["ports"]}
    assert int(port) in ports


@pytest.mark.parametrize("name", ["arqd-api", "arqd-worker"])
def test_selector_matches_pods(objects: dict[tuple[str, str], dict[str, Any]], name: str) -> None:
    spec = objects["Deployment", name]["spec"]
    selector = spec["selector"]["matchLabels"]
    labels = spec["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()


def test_api_runs_without_a_worker(objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    api = container(objects, "arqd-api")
    assert api["args"] == ["arqd", "serve", "--no-worker"]
    assert api["image"].split(":")[0] == "arqd"


def test_api_is_probed(objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    api = container(objects, "arqd-api")
    port_names = {p["name"]: p["containerPort"] for p in api["ports"]}
    assert port_names["http"] == 3000
    http_get = api["readinessProbe"]["httpGet"]
    assert (http_get["path"], http_get["port"]) == ("/ready", "http")
    # Liveness must not depend on Redis: a Redis outage must not restart every API pod.
    assert api["livenessProbe"]["tcpSocket"]["port"] == "http"


def test_api_service_reaches_the_api_pods(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    service = objects["Service", "arqd-api"]["spec"]
    labels = objects["Deployment", "arqd-api"]["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= labels.items()
    (port,) = service["ports"]
    assert (port["port"], port["targetPort"]) == (3000, "http")


def test_worker_is_probed_on_its_metrics_port(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    worker = container(objects, "arqd-worker")
    assert worker["args"][:2] == ["arqd", "worker"]
    assert {p["name"]: p["containerPort"] for p in worker["ports"]} == {"metrics": 9090}
    http_get = worker["livenessProbe"]["httpGet"]
    assert (http_get["path"], http_get["port"]) == ("/metrics", "metrics")


def test_worker_outlives_its_shutdown_grace(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    grace_ms = int(settings_env(objects)["ARQD_SHUTDOWN_GRACE"])
    assert pod_spec(objects, "arqd-worker")["terminationGracePeriodSeconds"] * 1000 > grace_ms


def test_redis_keeps_an_append_only_file_on_a_volume(
    objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    redis = objects["StatefulSet", "redis"]["spec"]
    (server,) = redis["template"]["spec"]["containers"]
    assert "--appendonly yes" in " ".join(server["args"])
    (claim,) = redis["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in server["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/data"
    assert redis["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
