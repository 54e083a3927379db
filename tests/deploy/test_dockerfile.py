"""deploy/Dockerfile, read as text: a multi-stage uv build from the lock file, a runtime
stage that runs as a non-root user, exposes the API and metrics ports and checks /health."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

import pytest
from deploy_contract import DEPLOY, ROOT, load_yaml_documents

from arqd.core.errors import ConfigurationError
from arqd.core.settings import Settings

DOCKERFILE = DEPLOY / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions() -> list[Instruction]:
    """The Dockerfile's instructions, with continuation lines joined and comments dropped."""
    found: list[Instruction] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += " " + stripped.removesuffix("\\").strip()
        if stripped.endswith("\\"):
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        found.append(Instruction(keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return found


def stages() -> list[list[Instruction]]:
    """Instructions grouped by build stage (global ARGs before the first FROM dropped)."""
    grouped: list[list[Instruction]] = []
    for instruction in instructions():
        if instruction.keyword == "FROM":
            grouped.append([])
        if grouped:
            grouped[-1].append(instruction)
    return grouped


def runtime() -> list[Instruction]:
    return stages()[-1]


def arguments(stage: list[Instruction], keyword: str) -> list[str]:
    return [i.arguments for i in stage if i.keyword == keyword]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in arguments(runtime(), "ENV"):
        for pair in shlex.split(line):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def global_args() -> dict[str, str]:
    first_from = next(i for i, ins in enumerate(instructions()) if ins.keyword == "FROM")
    return dict(
        ins.arguments.partition("=")[::2]
        for ins in instructions()[:first_from]
        if ins.keyword == "ARG"
    )


def test_builds_and_runs_on_python_311_slim() -> None:
    base = global_args()["PYTHON_IMAGE"]
    assert base == "python:3.11-slim"
    froms = [stage[0].arguments for stage in stages()]
    assert len(froms) >= 2, "expected a multi-stage build"
    assert froms[-1].startswith("${PYTHON_IMAGE}"), "the runtime stage should be python slim"


def test_dependencies_come_from_the_lock_file() -> None:
    build = next(s for s in stages() if any("uv sync" in r for r in arguments(s, "RUN")))
    copies = arguments(build, "COPY")
    assert "pyproject.toml uv.lock README.md ./" in copies
    assert "src/ src/" in copies
    syncs = [r for r in arguments(build, "RUN") if "uv sync" in r]
    assert syncs, "no `uv sync` in the build stage"
    for sync in syncs:
        assert "--frozen" in sync, sync
        assert "--no-dev" in sync, sync


def test_copied_sources_exist() -> None:
    for stage in stages():
        for copy in arguments(stage, "COPY"):
            if copy.startswith("--from"):
                continue
            *sources, _destination = copy.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def test_runs_as_a_numeric_non_root_user() -> None:
    users = arguments(runtime(), "USER")
    assert users, "the runtime stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "use a numeric uid, so Kubernetes can check runAsNonRoot"
    assert int(uid) != 0, "the image runs as root"
    last_user = max(i for i, ins in enumerate(runtime()) if ins.keyword == "USER")
    cmd = max(i for i, ins in enumerate(runtime()) if ins.keyword == "CMD")
    assert last_user < cmd


def test_uid_matches_the_kubernetes_security_context() -> None:
    uid = int(arguments(runtime(), "USER")[-1].split(":")[0])
    for name in ("api-deployment.yaml", "worker-deployment.yaml"):
        (deployment,) = load_yaml_documents(DEPLOY / "k8s" / name)
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == uid


def test_exposes_the_api_and_metrics_ports() -> None:
    exposed = {port for line in arguments(runtime(), "EXPOSE") for port in line.split()}
    assert exposed == {"3000", "9090"}


def test_listens_on_every_interface() -> None:
    env = image_env()
    assert env["ARQD_HOST"] == "0.0.0.0"
    assert env["ARQD_PORT"] == "3000"
    assert env["METRICS_PORT"] == "9090"


def test_image_environment_is_accepted_by_arqd() -> None:
    env = {k: v for k, v in image_env().items() if k not in {"PATH"}}
    try:
        Settings.from_env(env)
    except ConfigurationError as exc:
        pytest.fail(f"arqd would refuse to start in the image: {exc}")


def test_healthcheck_probes_health() -> None:
    (healthcheck,) = arguments(runtime(), "HEALTHCHECK")
    options, _, command = healthcheck.partition("CMD ")
    assert "--interval=" in options
    assert "--timeout=" in options
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"]
    assert "/health" in argv[2]
    compile(argv[2], "HEALTHCHECK", "exec")


def test_default_command_serves_the_api_only() -> None:
    (cmd,) = arguments(runtime(), "CMD")
    assert json.loads(cmd) == ["arqd", "serve", "--no-worker"]
