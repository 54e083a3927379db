"""One typed settings object, read from the environment once and passed in.

Names from the spec keep their names (``REDIS_URL``, ``TASK_TIMEOUT``...); settings of
arqd's own carry the ``ARQD_`` prefix. Durations are in milliseconds, as in the spec.
An unknown ``ARQD_*`` variable is an error, so a misspelling never goes unnoticed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from arqd.core.errors import ConfigurationError

PREFIX = "ARQD_"
TRACE_ID = "{trace_id}"  # where ARQD_TRACE_URL puts a task's trace id
_COUNT = re.compile(r"^\s*[0-9]{1,9}\s*$")
SECRETS = frozenset(
    {"API_KEYS", "ARQD_RATE_LIMIT_OVERRIDES", "ARQD_READ_ONLY_KEYS", "ARQD_UI_SECRET"}
)  # never echoed in errors


def _env(name: str, default: Any, **constraints: Any) -> Any:
    return Field(default, validation_alias=AliasChoices(name), **constraints)


class Settings(BaseModel):
    """Every setting arqd reads, with its environment variable and default.

    A plain pydantic model: ``from_env`` reads the environment itself (it must, to refuse
    unknown ``ARQD_*`` names), so pydantic-settings, several MB of every process's memory
    (bench.compare, worker peak RSS), is not needed.
    """

    model_config = ConfigDict(
        populate_by_name=True, frozen=True, extra="forbid", validate_default=True
    )

    # From the spec.
    redis_url: str | None = _env("REDIS_URL", None)
    queue_max_retries: int = _env("QUEUE_MAX_RETRIES", 3, ge=0, le=1000)
    task_timeout: int = _env("TASK_TIMEOUT", 30_000, gt=0)
    requests_per_minute: int = _env("REQUESTS_PER_MINUTE", 60, ge=0)
    circuit_breaker_threshold: int = _env("CIRCUIT_BREAKER_THRESHOLD", 5, gt=0)
    circuit_breaker_timeout: int = _env("CIRCUIT_BREAKER_TIMEOUT", 30_000, gt=0)
    metrics_port: int = _env("METRICS_PORT", 9090, ge=0, le=65535)
    metrics_host: str = _env("ARQD_METRICS_HOST", "0.0.0.0")
    metrics_public: bool = _env("ARQD_METRICS_PUBLIC", False)
    enable_prometheus: bool = _env("ENABLE_PROMETHEUS", True)
    jaeger_enabled: bool = _env("JAEGER_ENABLED", False)
    jaeger_endpoint: str | None = _env("JAEGER_ENDPOINT", None)
    trace_sample_rate: float = _env("TRACE_SAMPLE_RATE", 1.0, ge=0.0, le=1.0)
    trace_url: str | None = _env("ARQD_TRACE_URL", None)

    api_keys: str | None = _env("API_KEYS", None)
    rate_limit_overrides: str | None = _env("ARQD_RATE_LIMIT_OVERRIDES", None)
    read_only_keys: str | None = _env("ARQD_READ_ONLY_KEYS", None)
    ui_secret: str | None = _env("ARQD_UI_SECRET", None, min_length=32)

    # arqd's own.
    host: str = _env("ARQD_HOST", "127.0.0.1")
    port: int = _env("ARQD_PORT", 3000, ge=0, le=65535)
    max_body_bytes: int = _env("ARQD_MAX_BODY_BYTES", 1_048_576, gt=0)
    max_inflight: int = _env("ARQD_MAX_INFLIGHT", 1000, ge=0)
    auth_failures_per_minute: int = _env("ARQD_AUTH_FAILURES_PER_MINUTE", 30, ge=0)
    data_dir: Path = _env("ARQD_DATA_DIR", Path(".arqd"))
    key_prefix: str = _env("ARQD_KEY_PREFIX", "arqd", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    queue: str = _env("ARQD_QUEUE", "default", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    concurrency: int = _env("ARQD_CONCURRENCY", 50, gt=0, le=10_000)
    lease_timeout: int = _env("ARQD_LEASE_TIMEOUT", 5_000, ge=500)
    shutdown_grace: int = _env("ARQD_SHUTDOWN_GRACE", 30_000, ge=0)
    retry_base_delay: int = _env("ARQD_RETRY_BASE_DELAY", 1_000, ge=0)
    retry_max_delay: int = _env("ARQD_RETRY_MAX_DELAY", 300_000, ge=0)
    result_ttl: int = _env("ARQD_RESULT_TTL", 3_600_000, gt=0)
    failed_ttl: int = _env("ARQD_FAILED_TTL", 604_800_000, gt=0)
    failed_max: int = _env("ARQD_FAILED_MAX", 10_000, gt=0)
    finished_index_max: int = _env("ARQD_FINISHED_INDEX_MAX", 10_000, gt=0)
    events_max: int = _env("ARQD_EVENTS_MAX", 10_000, gt=0)
    idempotency_ttl: int = _env("ARQD_IDEMPOTENCY_TTL", 86_400_000, gt=0)
    replica_acks: int = _env("ARQD_REPLICA_ACKS", 0, ge=0, le=100)
    replica_ack_timeout: int = _env("ARQD_REPLICA_ACK_TIMEOUT", 1_000, gt=0)
    max_payload_bytes: int = _env("ARQD_MAX_PAYLOAD_BYTES", 1_048_576, gt=0)
    task_log_lines: int = _env("ARQD_TASK_LOG_LINES", 1000, gt=0, le=1_000_000)
    task_log_line_bytes: int = _env("ARQD_TASK_LOG_LINE_BYTES", 2048, ge=16, le=1_048_576)
    log_level: str = _env("ARQD_LOG_LEVEL", "INFO", pattern=r"^(?i)(debug|info|warning|error)$")
    log_format: str = _env("ARQD_LOG_FORMAT", "text", pattern=r"^(text|json)$")

    @field_validator("trace_url")
    @classmethod
    def _check_trace_url(cls, value: str | None) -> str | None:
        if value is not None:
            check_trace_url(value)
        return value

    @field_validator("rate_limit_overrides")
    @classmethod
    def _check_overrides(cls, value: str | None, info: ValidationInfo) -> str | None:
        keys = info.data.get("api_keys")
        parse_overrides(value, {key.strip() for key in (keys or "").split(",")})
        return value

    @field_validator("read_only_keys")
    @classmethod
    def _check_read_only(cls, value: str | None, info: ValidationInfo) -> str | None:
        keys = {key.strip() for key in (info.data.get("api_keys") or "").split(",")}
        for number, key in enumerate(_listed(value), start=1):
            if key not in keys:
                raise ValueError(f"entry {number} is not one of API_KEYS")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings, raising ConfigurationError naming any bad variable."""
        env = dict(os.environ if environ is None else environ)
        known = {_alias(name) for name in cls.model_fields}
        unknown = sorted(k for k in env if k.startswith(PREFIX) and k not in known)
        if unknown:
            raise ConfigurationError(f"unknown setting(s): {', '.join(unknown)}")
        values = {k: v for k, v in env.items() if k in known and v != ""}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise ConfigurationError(_describe(exc, values)) from None

    def api_key_list(self) -> list[str]:
        """The configured API keys (API_KEYS, comma-separated); empty means the API is open."""
        return [key.strip() for key in (self.api_keys or "").split(",") if key.strip()]

    def read_only_key_list(self) -> list[str]:
        """The API keys the dashboard lets look but not act (ARQD_READ_ONLY_KEYS)."""
        return _listed(self.read_only_keys)

    def rate_limits(self) -> dict[str, int]:
        """Requests per minute by API key, from ARQD_RATE_LIMIT_OVERRIDES (0: unlimited)."""
        return parse_overrides(self.rate_limit_overrides, set(self.api_key_list()))

    def retry_delays(self) -> tuple[float, float]:
        """The default backoff base and cap, in seconds."""
        return self.retry_base_delay / 1000, self.retry_max_delay / 1000

    def trace_link(self, trace_id: str) -> str | None:
        """The page of trace ``trace_id`` in the tracing UI (ARQD_TRACE_URL); None unset."""
        return self.trace_url.replace(TRACE_ID, trace_id) if self.trace_url else None


def parse_overrides(value: str | None, api_keys: set[str]) -> dict[str, int]:
    """``KEY=COUNT,KEY=COUNT``: each KEY one of API_KEYS, COUNT requests per minute (0: no
    limit). Errors never repeat a key: they are secrets."""
    limits: dict[str, int] = {}
    entries = [entry.strip() for entry in (value or "").split(",")]
    for number, entry in enumerate(filter(None, entries), start=1):
        key, equals, count = entry.rpartition("=")
        key = key.strip()
        if not equals or not key or not _COUNT.match(count):
            raise ValueError(f"entry {number} is not KEY=COUNT with COUNT a whole number >= 0")
        if key not in api_keys:
            raise ValueError(f"entry {number} names a key that is not one of API_KEYS")
        limits[key] = int(count)
    return limits


def check_trace_url(template: str) -> None:
    """An http(s) URL holding ``{trace_id}``, the place of the 32 hex digits of a trace id."""
    example = "http://localhost:16686/trace/{trace_id}"
    url = urlsplit(template.replace(TRACE_ID, "0" * 32))
    if url.scheme not in ("http", "https") or not url.netloc:
        raise ValueError(f"must be an http:// or https:// URL, such as {example}")
    if TRACE_ID not in template:
        raise ValueError(f"must hold {TRACE_ID} where the trace id goes, as in {example}")


def _listed(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _alias(field_name: str) -> str:
    alias = Settings.model_fields[field_name].validation_alias
    assert isinstance(alias, AliasChoices)
    return str(alias.choices[0])


def _describe(exc: ValidationError, values: Mapping[str, str]) -> str:
    problems = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "?"
        shown = "<secret>" if name in SECRETS else values.get(name, "")
        problems.append(f"{name}={shown!r}: {error['msg']}")
    return "invalid setting " + "; ".join(problems)
