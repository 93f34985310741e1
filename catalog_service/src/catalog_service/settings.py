"""Settings: the environment is read once, here, into a typed object."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from . import lint
from .logs import LogFormat


class SettingsError(ValueError):
    """A wrong value in the environment; the message names the variable."""


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    data_dir: Path = Path(".catalog-data")
    host: str = "127.0.0.1"
    port: int = 8080
    admin_token: str | None = field(default=None, repr=False)
    allowed_networks: tuple[IPNetwork, ...] = ()
    refresh_interval: float = 3600.0
    fetch_timeout: float = 30.0
    max_spec_bytes: int = 50 * 1024 * 1024
    # A document split over files: how many files one bundle may join (the bytes of
    # them all together count against max_spec_bytes).
    max_bundle_files: int = 1000
    validation_timeout: float = 600.0
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    auto_migrate: bool = True
    # How many projects one replica collects at once.
    collect_concurrency: int = 8
    # How long a replica's claim on a project lasts before another may take it over
    # (CATALOG_LEASE_SECONDS; 0: derived from the fetch and validation timeouts).
    lease_seconds: float = 0.0
    # CATALOG_LOG_FORMAT: text for people, json for a log collector.
    log_format: LogFormat = "text"
    # POST /api/validate: how long an anonymous check may validate, and how many checks
    # may wait for the checks' worker before more are answered 429.
    # CATALOG_PUBLIC_URL: the service's own address as readers reach it (the absolute
    # URLs of the RFC 9727 linkset and the Atom feed); None: taken from each request.
    public_url: str | None = None
    # CATALOG_HEADER_TIMEOUT: seconds a connection may take to send a request's head.
    header_timeout: float = 15.0
    # Quotas and fairness: projects one (non-admin) token may register; writes per
    # minute from one client address, and anonymous checks per minute; invalid or
    # never-published versions kept per project (every valid one is kept).
    max_projects_per_token: int = 100
    write_rate: int = 60
    anonymous_validate_rate: int = 20
    keep_invalid_versions: int = 10
    anonymous_validation_timeout: float = 10.0
    validate_queue: int = 4
    # CATALOG_LINT_RULESET: the Spectral ruleset file every OpenAPI 3.x document is
    # linted with; None: the NLGov API Design Rules the package carries.
    lint_ruleset: str | None = None
    # CATALOG_LINT_TIMEOUT: seconds linting one document may take (within the
    # validation's own time); a document that needs longer has no report.
    lint_timeout: float = 60.0
    # Webhooks: seconds one delivery attempt may take (CATALOG_WEBHOOK_TIMEOUT); the
    # first retry's wait, doubling after each failure up to an hour
    # (CATALOG_WEBHOOK_RETRY_SECONDS); how long a delivery is retried before it is
    # marked failed (CATALOG_WEBHOOK_RETRY_FOR).
    webhook_timeout: float = 10.0
    webhook_retry_seconds: float = 5.0
    webhook_retry_for: float = 24 * 3600.0

    @property
    def effective_lease_seconds(self) -> float:
        """A lease must outlive the slowest honest collection: download (of all the
        files of a document split over files: four times the fetch timeout) plus
        validation."""
        return self.lease_seconds or (4 * self.fetch_timeout + self.validation_timeout + 60.0)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        defaults = cls()

        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def secret(name: str) -> str | None:
            """NAME, or the contents of the file NAME_FILE names (Docker secrets)."""
            path = text(f"{name}_FILE")
            if path is None:
                return text(name)
            try:
                return Path(path).read_text("utf-8").strip() or None
            except OSError as exc:
                raise SettingsError(
                    f"{name}_FILE names a file that cannot be read ({exc.strerror})"
                ) from None

        def number(
            name: str,
            default: float,
            *,
            minimum: float,
            maximum: float = float("inf"),
            integer: bool = False,
        ) -> float:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = int(raw) if integer else float(raw)
            except ValueError:
                kind = "a whole number" if integer else "a number"
                raise SettingsError(f"{name} must be {kind}, got {raw!r}") from None
            if not minimum <= value <= maximum:
                bounds = f"at least {minimum:g}"
                if maximum != float("inf"):
                    bounds = f"between {minimum:g} and {maximum:g}"
                raise SettingsError(f"{name} must be {bounds}, got {raw!r}")
            return value

        def boolean(name: str, default: bool) -> bool:
            raw = text(name)
            if raw is None:
                return default
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise SettingsError(f"{name} must be true or false, got {raw!r}")

        database_url = secret("DATABASE_URL")
        if database_url is not None and not database_url.startswith(("postgresql://", "postgres://")):
            raise SettingsError("DATABASE_URL must start with postgresql:// (the value is not shown)")

        networks: list[IPNetwork] = []
        for part in (text("CATALOG_ALLOWED_NETWORKS") or "").split(","):
            part = part.strip()
            if not part:
                continue
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise SettingsError(
                    f"CATALOG_ALLOWED_NETWORKS must be comma-separated CIDRs, {part!r} is not one"
                ) from None

        public_url = text("CATALOG_PUBLIC_URL")
        if public_url is not None:
            parsed = urlsplit(public_url)
            if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query or parsed.fragment:
                raise SettingsError(
                    f"CATALOG_PUBLIC_URL must be an http(s) URL with a host and no query, got {public_url!r}"
                )
            public_url = public_url.rstrip("/")

        raw_format = (text("CATALOG_LOG_FORMAT") or "text").lower()
        if raw_format not in ("text", "json"):
            raise SettingsError(f"CATALOG_LOG_FORMAT must be text or json, got {raw_format!r}")
        log_format: LogFormat = "json" if raw_format == "json" else "text"

        lint_ruleset = text("CATALOG_LINT_RULESET")
        if lint_ruleset is not None:
            lint_ruleset = str(Path(lint_ruleset).resolve())
            try:
                lint.load(lint_ruleset)
            except lint.RulesetError as exc:
                raise SettingsError(f"CATALOG_LINT_RULESET: {exc}") from None

        return cls(
            lint_ruleset=lint_ruleset,
            lint_timeout=number("CATALOG_LINT_TIMEOUT", defaults.lint_timeout, minimum=0.1),
            webhook_timeout=number(
                "CATALOG_WEBHOOK_TIMEOUT", defaults.webhook_timeout, minimum=0.1, maximum=300
            ),
            webhook_retry_seconds=number(
                "CATALOG_WEBHOOK_RETRY_SECONDS", defaults.webhook_retry_seconds, minimum=0.01, maximum=3600
            ),
            webhook_retry_for=number(
                "CATALOG_WEBHOOK_RETRY_FOR", defaults.webhook_retry_for, minimum=0, maximum=30 * 24 * 3600
            ),
            database_url=database_url,
            data_dir=Path(text("CATALOG_DATA_DIR") or defaults.data_dir),
            host=text("CATALOG_HOST") or defaults.host,
            port=int(number("CATALOG_PORT", defaults.port, minimum=0, maximum=65535, integer=True)),
            admin_token=secret("CATALOG_ADMIN_TOKEN"),
            allowed_networks=tuple(networks),
            refresh_interval=number("CATALOG_REFRESH_INTERVAL", defaults.refresh_interval, minimum=1),
            fetch_timeout=number("CATALOG_FETCH_TIMEOUT", defaults.fetch_timeout, minimum=0.1),
            max_spec_bytes=int(
                number("CATALOG_MAX_SPEC_BYTES", defaults.max_spec_bytes, minimum=1, integer=True)
            ),
            max_bundle_files=int(
                number("CATALOG_MAX_BUNDLE_FILES", defaults.max_bundle_files, minimum=1, integer=True)
            ),
            validation_timeout=number("CATALOG_VALIDATION_TIMEOUT", defaults.validation_timeout, minimum=0.1),
            workers=int(number("CATALOG_WORKERS", defaults.workers, minimum=1, integer=True)),
            auto_migrate=boolean("CATALOG_AUTO_MIGRATE", True),
            lease_seconds=number("CATALOG_LEASE_SECONDS", 0.0, minimum=0),
            log_format=log_format,
            public_url=public_url,
            header_timeout=number("CATALOG_HEADER_TIMEOUT", defaults.header_timeout, minimum=0.1),
            max_projects_per_token=int(
                number(
                    "CATALOG_MAX_PROJECTS_PER_TOKEN", defaults.max_projects_per_token, minimum=1, integer=True
                )
            ),
            write_rate=int(number("CATALOG_WRITE_RATE", defaults.write_rate, minimum=1, integer=True)),
            anonymous_validate_rate=int(
                number(
                    "CATALOG_ANONYMOUS_VALIDATE_RATE",
                    defaults.anonymous_validate_rate,
                    minimum=1,
                    integer=True,
                )
            ),
            keep_invalid_versions=int(
                number(
                    "CATALOG_KEEP_INVALID_VERSIONS", defaults.keep_invalid_versions, minimum=1, integer=True
                )
            ),
            anonymous_validation_timeout=number(
                "CATALOG_ANONYMOUS_VALIDATION_TIMEOUT", defaults.anonymous_validation_timeout, minimum=0.1
            ),
            validate_queue=int(
                number(
                    "CATALOG_VALIDATE_QUEUE", defaults.validate_queue, minimum=0, maximum=10_000, integer=True
                )
            ),
        )
