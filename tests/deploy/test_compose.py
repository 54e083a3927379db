"""deploy/docker-compose.yml, parsed: the services, how they are wired, and an environment
arqd accepts. (No Docker engine runs the file here.)"""

from __future__ import annotations

import importlib
import re
from typing import Any

import pytest
from deploy_contract import DEPLOY, ROOT, duration_seconds, load_yaml, mapping

from arqd.core.errors import ConfigurationError
from arqd.core.settings import Settings
from arqd.worker import Registry

ARQD_SERVICES = ("api", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return mapping(load_yaml(DEPLOY / "docker-compose.yml"), "docker-compose.yml")


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: mapping(s, name) for name, s in compose["services"].items()}


def interpolate(value: object) -> str:
    """What compose makes of ``${VAR:-default}`` when VAR is unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment should be a mapping"
    return {key: interpolate(value) for key, value in env.items()}


def healthcheck_command(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    assert test[0] in {"CMD", "CMD-SHELL"}
    return " ".join(test[1:])


def test_the_stack_has_every_service(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {"api", "worker", "redis", "prometheus", "jaeger", "grafana"}


@pytest.mark.parametrize(
    ("service", "image"),
    [
        ("redis", "redis:7-alpine"),
        ("prometheus", "prom/prometheus:"),
        ("jaeger", "jaegertracing/all-in-one:"),
        ("grafana", "grafana/grafana:"),
    ],
)
def test_third_party_images_are_pinned(
    services: dict[str, dict[str, Any]], service: str, image: str
) -> None:
    assert services[service]["image"].startswith(image)
    assert not services[service]["image"].endswith(":latest")


@pytest.mark.parametrize("service", ARQD_SERVICES)
def test_arqd_services_build_the_deploy_image(
    services: dict[str, dict[str, Any]], service: str
) -> None:
    build = services[service]["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert context == ROOT
    assert (context / build["dockerfile"]).is_file()
    assert services[service]["image"] == "arqd:latest"


def test_api_serves_http_without_a_worker(services: dict[str, dict[str, Any]]) -> None:
    api = services["api"]
    assert api["command"] == ["arqd", "serve", "--no-worker"]
    assert api["ports"] == ["3000:3000"]
    assert environment(api)["ARQD_HOST"] == "0.0.0.0"
    assert "127.0.0.1:3000/health" in healthcheck_command(api)


def test_worker_serves_metrics_and_scales(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert worker["command"] == ["arqd", "worker", "arqd.demo"]
    assert environment(worker)["METRICS_PORT"] == "9090"
    assert worker["expose"] == ["9090"]
    assert "ports" not in worker, "a host port would stop `--scale worker=N`"
    assert "127.0.0.1:9090/metrics" in healthcheck_command(worker)


def test_worker_module_ships_with_arqd(services: dict[str, dict[str, Any]]) -> None:
    """The image installs arqd only, so the worker's module must be part of the package."""
    module_name = services["worker"]["command"][2]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        pytest.fail(f"the worker runs {module_name}, which arqd does not ship: {exc}")
    registry = getattr(module, "registry", None)
    assert isinstance(registry, Registry), f"{module_name} has no Registry named registry"
    assert {"echo", "sleep", "fail"} <= {task_type.name for task_type in registry}


def test_worker_gets_time_to_finish_its_tasks(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    grace_ms = int(environment(worker)["ARQD_SHUTDOWN_GRACE"])
    assert duration_seconds(worker["stop_grace_period"]) * 1000 > grace_ms


@pytest.mark.parametrize("service", ARQD_SERVICES)
def test_arqd_environment(services: dict[str, dict[str, Any]], service: str) -> None:
    env = environment(services[service])
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["JAEGER_ENABLED"] == "true"
    assert env["JAEGER_ENDPOINT"] == "http://jaeger:4318/v1/traces"
    assert env["ENABLE_PROMETHEUS"] == "true"
    assert env["ARQD_LOG_FORMAT"] == "json"


@pytest.mark.parametrize("service", ARQD_SERVICES)
def test_arqd_accepts_the_environment(services: dict[str, dict[str, Any]], service: str) -> None:
    env = environment(services[service])
    try:
        settings = Settings.from_env(env)
    except ConfigurationError as exc:
        pytest.fail(f"arqd would refuse to start the {service} service: {exc}")
    assert settings.metrics_port == 9090
    assert settings.host == "0.0.0.0"


@pytest.mark.parametrize("service", ARQD_SERVICES)
def test_arqd_waits_for_a_healthy_redis(services: dict[str, dict[str, Any]], service: str) -> None:
    depends_on = services[service]["depends_on"]
    assert depends_on["redis"]["condition"] == "service_healthy"


def test_every_awaited_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for needed, how in service.get("depends_on", {}).items():
            if how["condition"] == "service_healthy":
                assert "healthcheck" in services[needed], f"{name} waits on {needed}'s health"


def test_redis_keeps_an_append_only_file(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    redis = services["redis"]
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "redis-data:/data" in redis["volumes"]
    assert "redis-data" in compose["volumes"]
    assert "redis-cli" in healthcheck_command(redis)


def test_prometheus_loads_the_config_and_rules(services: dict[str, dict[str, Any]]) -> None:
    prometheus = services["prometheus"]
    assert prometheus["ports"] == ["9091:9090"]
    mounts = bind_mounts(prometheus)
    assert mounts["./prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    # rule_files: [alerts.yml] is read next to the config file.
    assert mounts["./prometheus/alerts.yml"] == "/etc/prometheus/alerts.yml"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]


def test_jaeger_takes_otlp(services: dict[str, dict[str, Any]]) -> None:
    jaeger = services["jaeger"]
    assert jaeger["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    published = {port.split("#")[0].strip().split(":")[0] for port in jaeger["ports"]}
    assert {"16686", "4317", "4318"} <= published


def test_grafana_is_provisioned(services: dict[str, dict[str, Any]]) -> None:
    grafana = services["grafana"]
    assert grafana["ports"] == ["3001:3000"]
    mounts = bind_mounts(grafana)
    assert {"./grafana/provisioning", "./grafana/dashboards"} <= set(mounts)
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_bind_mounts_exist(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for source in bind_mounts(service):
            assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"


def test_named_volumes_are_declared(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith("."):
                assert source in compose["volumes"], f"{name} uses undeclared volume {source}"


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Host path → container path, for the bind mounts (sources starting with ./)."""
    mounts = [v.split(":") for v in service.get("volumes", [])]
    return {m[0]: m[1] for m in mounts if m[0].startswith(".")}
