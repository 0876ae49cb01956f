"""Settings: one frozen, typed ``Settings`` built once at start and passed down.

Sources, lowest to highest precedence: built-in defaults, a TOML file (``--config FILE`` or
``OPENHI_CONFIG``), ``OPENHI_*`` environment variables, command-line flags. ``load_settings`` also
returns where each value came from, so ``openhi config`` can print it. Nothing reads the environment
after start.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from openhi.errors import ValidationError

ACCOUNT_ID = re.compile(r"\d{12}")
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")


@dataclass(frozen=True)
class Settings:
    """Every knob of an OpenHI process. Field docs are printed by ``openhi config``."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1  # server processes sharing the port (uvicorn workers); each runs its own background loops
    data_dir: Path = Path("./openhi-data")
    index_url: str = ""  # empty: sqlite:///{data_dir}/index.sqlite3
    blob_url: str = ""  # empty: file://{data_dir}/blobs
    account_id: str = "123456789012"
    region: str = "us-east-1"
    access_key_id: str = ""  # empty: generated on first start and kept in {data_dir}/credentials.json
    secret_access_key: str = ""
    iam_file: str = ""  # TOML file of IAM users and roles (read-only principals, docs/iam.md); empty: none
    iam_cache_seconds: float = 5.0  # how long a resolved access key / role is reused before the index is read again
    max_active_datastores: int = 10
    max_request_bytes: int = 10 * 1024 * 1024
    datastore_transition_seconds: float = 1.0
    clock_skew_seconds: int = 900
    import_workers: int = 0  # worker processes for import jobs; 0: one per CPU core
    import_lease_seconds: float = 30.0  # a job whose process stops renewing this long is taken over
    max_concurrent_import_jobs: int = 100  # SUBMITTED + IN_PROGRESS per data store (guide 22672-22776)
    # Service quotas (guide 22730-22776); each beyond its limit answers ServiceQuotaExceededException
    max_concurrent_image_set_updates: int = 100  # UpdateImageSetMetadata requests in flight per data store
    max_concurrent_image_set_copies: int = 100  # CopyImageSet requests in flight per data store
    max_concurrent_image_set_deletes: int = 100  # DeleteImageSet requests in flight per data store
    max_frames_per_copy: int = 1000  # image frames one CopyImageSet request may copy
    max_update_payload_bytes: int = 10 * 1024  # UpdateImageSetMetadata patch size (beyond: ValidationException)
    max_image_set_metadata_bytes: int = 50 * 1024 * 1024  # metadata JSON an import, copy or update may produce
    max_import_files: int = 5000  # files per import job (beyond: the job fails)
    # Throttling (guide 22777-22816, docs/throttling-and-quotas.md)
    throttling: bool = True  # the guide's rate + burst per operation; false turns every limit off
    throttle_rates: str = ""  # JSON overrides: {"GetImageFrame": [2000, 4000], "CopyImageSet": null}
    throttle_url: str = ""  # redis://host:6379/0 shares buckets across processes and hosts; empty: per process
    image_set_lock_timeout_seconds: float = 300.0  # a write left LOCKED this long by a dead process is recovered
    max_stow_request_bytes: int = 1024 * 1024 * 1024  # STOW-RS bodies (guide 1810: up to 1 GB per request)
    cors_allowed_origins: str = "*"  # comma-separated origins allowed by CORS, "*" for any, "" for none
    authorizers: str = ""  # JSON: lambdaAuthorizerArn -> "python:module:function" | "https://..." (docs/oidc.md)
    # Audit trail (docs/audit.md): one CloudTrail-shaped NDJSON record per API call
    audit_enabled: bool = True  # false: no audit records at all
    audit_data_events: bool = True  # also GetImageFrame and DICOMweb WADO-RS reads (CloudTrail data events)
    audit_dir: str = ""  # empty: {data_dir}/audit; each server process writes its own files (pid in the name)
    audit_max_bytes: int = 100 * 1024 * 1024  # a file is rotated before it would exceed this; 0: no size limit
    audit_rotate_daily: bool = True  # also rotate at the first record of each UTC day
    audit_keep_files: int = 100  # newest audit files kept in audit_dir (older ones deleted); 0: keep all
    audit_queue_size: int = 10000  # records waiting for the writer thread; beyond it records are dropped, counted
    audit_fsync: bool = False  # fsync every written batch; false: flush every batch, fsync at rotation and stop
    # Events (docs/events.md): every state change in an outbox, delivered to sinks and listed by GET /events
    event_sinks: str = ""  # JSON list of sinks: {"type": "ndjson"|"webhook"|"nats", ...} (docs/events.md); empty: none
    event_delivery_seconds: float = 0.2  # how often each sink's delivery loop looks for new events
    event_lease_seconds: float = 15.0  # a sink whose deliverer died is taken over by another process after this
    event_retention_days: float = 7.0  # events older than this that every sink delivered are pruned; 0: kept
    # Storage tiers (guide 23009-23052, docs/storage-tiers.md)
    storage_tiering: bool = True  # move image sets idle for archive_after_days to the archive tier; false: never
    archive_after_days: float = 30.0  # days without access (guide 23026-23030) before the archive tier (> 0)
    archive_blob_url: str = ""  # empty: file://{data_dir}/archive, or s3://bucket/PREFIX-archive beside an s3 blob_url
    tier_access_flush_seconds: float = 60.0  # accesses are noted in memory and written at most this often (> 0)
    tier_sweep_seconds: float = 3600.0  # how often each process looks for image sets to move between tiers (> 0)
    # Encryption at rest (guide 20934-21100, docs/encryption.md)
    encryption: bool = True  # new data stores get their own key; every object they hold is sealed (AES-256-GCM)
    master_key_file: str = ""  # master keys (JSON, 0600); empty: {data_dir}/master-keys.json, made at first start
    kms_provider: str = ""  # provider of customer keys named by kmsKeyArn: "local" or "aws"; empty: none
    local_kms_path: str = ""  # "local" provider: a directory of 32-byte key files (key/<id>, alias/<name>) or a JSON
    kms_endpoint_url: str = ""  # "aws" provider: KMS endpoint (LocalStack, moto); empty: the standard AWS config
    data_key_cache_seconds: float = 60.0  # unwrapped data store keys are reused this long before the index is read
    # Metrics (docs/metrics.md): GET /metrics, unauthenticated like most exporters: listen on loopback or firewall it
    metrics_enabled: bool = True  # false: no /metrics route (and no call metrics kept)
    log_level: str = "info"

    @property
    def effective_index_url(self) -> str:
        """The index URL, defaulting to SQLite inside the data dir."""
        return self.index_url or f"sqlite:///{(self.data_dir / 'index.sqlite3').resolve()}"

    @property
    def effective_blob_url(self) -> str:
        """The blob URL, defaulting to local files inside the data dir."""
        return self.blob_url or f"file://{(self.data_dir / 'blobs').resolve()}"


SECRET_FIELDS = frozenset({"secret_access_key"})
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
NON_NEGATIVE = (
    "max_concurrent_import_jobs",
    "max_concurrent_image_set_updates",
    "max_concurrent_image_set_copies",
    "max_concurrent_image_set_deletes",
    "max_frames_per_copy",
    "max_update_payload_bytes",
    "max_image_set_metadata_bytes",
    "max_import_files",
)
_FIELD_TYPES: dict[str, Any] = {f.name: f.type for f in fields(Settings)}


def _boolean(raw: object) -> bool:
    """A TOML/JSON boolean, or one of the usual words in an environment variable."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return raw.strip().lower() in TRUE_WORDS
    raise ValueError(raw)


def _coerce(name: str, raw: object) -> object:
    kind = _FIELD_TYPES[name]
    try:
        if kind == "bool":
            return _boolean(raw)
        if kind == "int":
            if isinstance(raw, bool):
                raise TypeError
            return int(raw)  # type: ignore[call-overload]
        if kind == "float":
            return float(raw)  # type: ignore[arg-type]
        if kind == "Path":
            return Path(str(raw))
        if not isinstance(raw, str | int | float):
            raise TypeError
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"setting {name!r}: {raw!r} is not a valid {kind}", field=name) from exc


def _validate(settings: Settings) -> None:
    if not ACCOUNT_ID.fullmatch(settings.account_id):
        raise ValidationError("setting 'account_id' must be 12 digits", field="account_id")
    if not REGION.fullmatch(settings.region):
        raise ValidationError(f"setting 'region' {settings.region!r} is not a region name", field="region")
    if not 0 <= settings.port <= 65535:
        raise ValidationError("setting 'port' must be 0..65535", field="port")
    if settings.workers < 1:
        raise ValidationError("setting 'workers' must be >= 1", field="workers")
    if settings.max_active_datastores < 0:
        raise ValidationError("setting 'max_active_datastores' must be >= 0", field="max_active_datastores")
    for name in ("event_delivery_seconds", "event_lease_seconds"):
        if getattr(settings, name) <= 0:
            raise ValidationError(f"setting {name!r} must be > 0", field=name)
    if settings.event_retention_days < 0:
        raise ValidationError("setting 'event_retention_days' must be >= 0", field="event_retention_days")
    if settings.iam_cache_seconds < 0:
        raise ValidationError("setting 'iam_cache_seconds' must be >= 0", field="iam_cache_seconds")
    for name in ("archive_after_days", "tier_access_flush_seconds", "tier_sweep_seconds"):  # storage tiers
        if not getattr(settings, name) > 0:
            raise ValidationError(f"setting {name!r} must be > 0", field=name)
    for name in NON_NEGATIVE:
        if getattr(settings, name) < 0:
            raise ValidationError(f"setting {name!r} must be >= 0", field=name)
    if bool(settings.access_key_id) != bool(settings.secret_access_key):
        raise ValidationError(
            "settings 'access_key_id' and 'secret_access_key' must be given together", field="access_key_id"
        )


def _read_toml(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ValidationError(f"config file {path} does not exist", field="config") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"config file {path} is not valid TOML: {exc}", field="config") from exc
    section = document.get("openhi", document)
    if not isinstance(section, dict):
        raise ValidationError(f"config file {path}: [openhi] must be a table", field="config")
    return section


def load_settings(
    flags: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> tuple[Settings, dict[str, str]]:
    """Build the settings and, for every field, the name of the source that set it.

    ``flags`` holds only the flags the user gave (None values are ignored). The TOML file may put keys at
    top level or under ``[openhi]``; unknown keys are refused so typos do not pass silently.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    sources = dict.fromkeys(_FIELD_TYPES, "default")
    path = config_file or (Path(environ["OPENHI_CONFIG"]) if environ.get("OPENHI_CONFIG") else None)
    if path is not None:
        for key, raw in _read_toml(path).items():
            if key not in _FIELD_TYPES:
                raise ValidationError(f"config file {path}: unknown setting {key!r}", field=key)
            values[key] = _coerce(key, raw)
            sources[key] = f"file {path}"
    for name in _FIELD_TYPES:
        env_name = f"OPENHI_{name.upper()}"
        if env_name in environ:
            values[name] = _coerce(name, environ[env_name])
            sources[name] = f"env {env_name}"
    for name, raw in (flags or {}).items():
        if raw is not None:
            values[name] = _coerce(name, raw)
            sources[name] = "flag"
    settings = Settings(**values)  # type: ignore[arg-type]
    _validate(settings)
    return settings, sources


def describe(settings: Settings, sources: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(name, printable value, source) rows for ``openhi config``; secrets are masked."""
    rows = []
    for f in fields(Settings):
        value = getattr(settings, f.name)
        if f.name in SECRET_FIELDS and value:
            shown = "********"
        elif f.name == "index_url":
            shown = settings.effective_index_url
        elif f.name == "blob_url":
            shown = settings.effective_blob_url
        else:
            shown = str(value)
        rows.append((f.name, shown, sources.get(f.name, "default")))
    return rows
