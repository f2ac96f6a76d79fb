"""Settings from config/agent.toml, overridden by DWEB_AGENT_* environment variables."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ENV_PREFIX = "DWEB_AGENT_"
# The shipped defaults travel inside the package (an installed wheel has no
# config/ folder); tests keep this copy identical to config/agent.toml.
PACKAGED_CONFIG_PATH = Path(__file__).resolve().parent / "defaults" / "agent.toml"
LOCAL_CONFIG_PATH = Path("config") / "agent.toml"


class ConfigError(Exception):
    """The configuration file or an override could not be used."""


class _Section(BaseModel):
    # Frozen: settings are loaded once and never changed, so one process (a daemon, an API
    # server) can share them between calls; what a call wants different is an option of that
    # call, or a derived copy (`settings.model_copy(update=...)`, see agent.services.scans).
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentSettings(_Section):
    data_dir: Path = Path("~/.local/share/dweb-agent")
    health_host: str = "127.0.0.1"
    health_port: int = Field(default=9464, ge=0, le=65535)
    # Empty: an SQLite file in data_dir. Several agents sharing work use one
    # PostgreSQL database: "postgresql+asyncpg://user@host/db".
    database_url: str = ""
    # Name of this agent in a group sharing a database (default: the host name).
    node_name: str = ""
    # On SIGTERM/SIGINT, running polls may finish for this long before they are cancelled.
    shutdown_grace_s: float = Field(default=30.0, ge=0)

    def database(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'agent.sqlite3'}"

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()


class GatewaySettings(_Section):
    urls: list[str] = Field(default_factory=list)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    max_retry_after_s: float = Field(default=30.0, ge=0)
    # Each response: at most this long waiting for the gateway in all, and, once its
    # body has had throughput_grace_s of waiting, at least min_bytes_per_s on average.
    response_deadline_s: float = Field(default=600.0, gt=0)
    min_bytes_per_s: float = Field(default=1024.0, ge=0)
    throughput_grace_s: float = Field(default=30.0, ge=0)
    # A gateway caught serving a wrong block is not asked by any node sharing the store for this
    # long; 0: each scan distrusts its liars only for itself.
    distrust_liar_s: float = Field(default=86400.0, ge=0)


class LimitSettings(_Section):
    max_block_bytes: int = Field(default=2 * 1024 * 1024, gt=0)
    max_item_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    max_scan_bytes: int = Field(default=10 * 1024**3, gt=0)
    max_items: int = Field(default=100_000, gt=0)
    max_dag_depth: int = Field(default=256, gt=0)
    max_dag_nodes: int = Field(default=1_000_000, gt=0)
    max_file_blocks: int = Field(default=1_000_000, gt=0)
    max_buffered_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    # Bytes one CAR response may send that the walk did not ask for (early blocks, repeats).
    max_unrequested_bytes: int = Field(default=256 * 1024 * 1024, gt=0)


class ScanSettings(_Section):
    sniff_bytes: int = Field(default=4096, ge=64)
    # Content on a denylist is reported without fetching it, unless this is true.
    fetch_denylisted: bool = False


class ListThresholds(_Section):
    """Per-list matching thresholds ([lists.thresholds.<list name>]); unset keys keep the defaults."""

    pdq_distance: int | None = Field(default=None, ge=0, le=256)
    pdq_min_quality: int | None = Field(default=None, ge=0, le=100)
    phash_distance: int | None = Field(default=None, ge=0, le=64)
    dhash_distance: int | None = Field(default=None, ge=0, le=64)
    ahash_distance: int | None = Field(default=None, ge=0, le=64)
    whash_distance: int | None = Field(default=None, ge=0, le=64)
    vpdq_match_percent: float | None = Field(default=None, ge=0, le=100)
    vpdq_compared_percent: float | None = Field(default=None, ge=0, le=100)


class TcapSettings(_Section):
    """A Tech Against Terrorism TCAP hash list, pulled with a token and a checkpoint."""

    name: str = "tcap"
    url: str
    # The token itself, or (better) the name of an environment variable holding it.
    token: str = Field(default="", repr=False)
    token_env: str = ""
    # Or log in with a username and password (each itself or an environment variable's name):
    # the agent fetches the JWT from token-auth/tcap/ on the API's host and renews it as it expires.
    username: str = ""
    username_env: str = ""
    password: str = Field(default="", repr=False)
    password_env: str = ""
    # The TCAP API takes `Authorization: Bearer <JWT>` and resumes from `after=<checkpoint>`.
    auth_scheme: str = "Bearer"
    checkpoint_param: str = "after"
    # "checkpoint": ask for after=<last checkpoint> page by page (safe if records change
    # mid-pull, as Meta's client does); "next": follow the API's next links.
    paging: str = Field(default="checkpoint", pattern="^(checkpoint|next)$")

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> TcapSettings:
        has_token = bool(self.token or self.token_env)
        has_login = bool((self.username or self.username_env) and (self.password or self.password_env))
        if has_token == has_login:
            which = "both" if has_token else "neither"
            raise ValueError(
                f"[[lists.tcap]] {self.name!r}: set either token/token_env or username(_env) and "
                f"password(_env), not {which}"
            )
        return self

    def secret(self) -> str:
        return os.environ.get(self.token_env, "") if self.token_env else self.token

    def login_username(self) -> str:
        return os.environ.get(self.username_env, "") if self.username_env else self.username

    def login_password(self) -> str:
        return os.environ.get(self.password_env, "") if self.password_env else self.password


class ListSettings(_Section):
    # Files, directories or http(s) URLs of hash lists and denylists, loaded for every scan.
    sources: list[str] = Field(default_factory=list)
    max_list_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    thresholds: dict[str, ListThresholds] = Field(default_factory=dict)
    tcap: list[TcapSettings] = Field(default_factory=list)


class MediaSettings(_Section):
    # Worker processes for decoding and perceptual hashing (0: one per usable CPU).
    workers: int = Field(default=0, ge=0)
    max_pixels: int = Field(default=50_000_000, gt=0)
    max_frames: int = Field(default=20_000, gt=0)
    max_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    max_video_seconds: float = Field(default=14_400, gt=0)
    timeout_s: float = Field(default=120.0, gt=0)
    # vPDQ frames hashed per second of video (0: every frame, as the reference lists do).
    video_fps_sample: float = Field(default=1.0, ge=0)
    # Time a new worker may take to start and begin an item; timeout_s counts only after.
    worker_start_timeout_s: float = Field(default=60.0, gt=0)
    # Address space of each worker (0: unbounded); an item needing more fails alone.
    max_worker_memory_bytes: int = Field(default=2 * 1024**3, ge=0)


class ScheduleSettings(_Section):
    default_interval_s: int = Field(default=600, ge=1)
    # Random delay added to each run, as a fraction of the interval, so that many
    # targets on one schedule do not hit gateways at the same instant.
    jitter_fraction: float = Field(default=0.1, ge=0, le=0.5)
    misfire_grace_s: int = Field(default=60, ge=1)
    # A failing target is retried after interval * 2^failures, at most this long.
    max_backoff_s: int = Field(default=6 * 3600, ge=1)
    lists_interval_s: int = Field(default=300, ge=1)
    # How often the agent looks for targets added or removed by `dweb-agent targets`.
    reconcile_interval_s: int = Field(default=15, ge=1)


class DnslinkSettings(_Section):
    # Resolvers for _dnslink TXT records (empty: the system's resolvers).
    nameservers: list[str] = Field(default_factory=list)
    port: int = Field(default=53, ge=1, le=65535)
    timeout_s: float = Field(default=5.0, gt=0)


class ArweaveSettings(_Section):
    max_pages_per_poll: int = Field(default=10, ge=1)
    page_size: int = Field(default=100, ge=1, le=1000)


class AlertSettings(_Section):
    # Webhook hosts allowed past the SSRF guard although they resolve to private or
    # loopback addresses (an operator's own receiver). Exact host names or IPs.
    allow_hosts: list[str] = Field(default_factory=list)
    delivery_timeout_s: float = Field(default=15.0, gt=0)
    # After `webhooks rotate-secret`, the old secret keeps signing (beside the new) this long.
    rotation_grace_s: int = Field(default=24 * 3600, ge=0)
    # A subscription failing without a success for this long is disabled.
    disable_after_days: float = Field(default=5.0, gt=0)
    # Matched content is re-checked this often (gateway probe; providers when routing_url is set).
    recheck_interval_s: int = Field(default=3600, ge=1)
    # Delegated Routing V1 endpoint for provider counts (e.g. https://delegated-ipfs.dev); empty: none.
    routing_url: str = ""


class ApiSettings(_Section):
    """The HTTP API (agent.api), served by `dweb-agent run` beside /healthz."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9465, ge=0, le=65535)
    # A JSON request body larger than this is refused (413) before it is parsed.
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # A /v1/hash upload larger than this is refused (413); it is read in chunks, never whole.
    max_upload_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    # Each token: this many requests per second on average, bursts of up to rate_limit_burst (429 beyond).
    rate_limit_per_s: float = Field(default=50.0, gt=0)
    rate_limit_burst: int = Field(default=200, ge=1)
    # Scans started through the API that run at once on this agent; more wait, queued in the store.
    scan_concurrency: int = Field(default=2, ge=1)
    # A running API scan holds its lease this long and renews it while it runs; a node that dies
    # loses it at expiry and another node (or this one, restarted) runs the scan again.
    scan_lease_s: float = Field(default=60.0, gt=0)
    # Hosts an API caller may name (scan gateways, list URLs, targets) although they resolve to
    # private or loopback addresses; the configured [gateways] urls are always allowed.
    allow_hosts: list[str] = Field(default_factory=list)
    # How long a token's check is remembered by this agent (a revocation on another agent
    # sharing the database takes effect within this; on this agent at once).
    token_cache_s: float = Field(default=5.0, ge=0)


class ConsoleSettings(_Section):
    """The investigators' web console (agent.console), served under /ui/ by the API's server."""

    enabled: bool = True
    # A session ends after this long without a request, and in any case this long after login.
    session_idle_s: float = Field(default=30 * 60.0, gt=0)
    session_max_s: float = Field(default=12 * 3600.0, gt=0)
    # Always mark the session cookie Secure (behind a TLS proxy the agent sees plain http and
    # cannot tell; it is marked Secure on its own whenever the request came over https).
    secure_cookie: bool = False
    # Previews are blurred and greyscale until clicked, unless a reviewer turns that off for
    # themselves; a preview is fetched through verified retrieval, never larger than this.
    blur_previews: bool = True
    preview_max_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    # Failed logins from one address: this many per minute on average, bursts of login_burst.
    login_per_min: float = Field(default=10.0, gt=0)
    login_burst: int = Field(default=10, ge=1)
    # Queue priority, per list, per label: a finding weighs the largest weight of its labels
    # (list name "*" applies to every list); heavier findings come first within a match kind.
    label_weights: dict[str, dict[str, float]] = Field(default_factory=dict)


class TargetSettings(_Section):
    url: str
    interval_s: int | None = Field(default=None, ge=1)


class Settings(_Section):
    agent: AgentSettings = Field(default_factory=AgentSettings)
    gateways: GatewaySettings = Field(default_factory=GatewaySettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    scan: ScanSettings = Field(default_factory=ScanSettings)
    lists: ListSettings = Field(default_factory=ListSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    dnslink: DnslinkSettings = Field(default_factory=DnslinkSettings)
    arweave: ArweaveSettings = Field(default_factory=ArweaveSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    # Watch targets declared in the file; more are added with `dweb-agent targets add`.
    targets: list[TargetSettings] = Field(default_factory=list)


def _env_overrides(raw: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Apply DWEB_AGENT_<SECTION>_<KEY> variables onto the parsed TOML.

    List-valued keys take a comma-separated string. Unknown names are an error,
    so a typo in a deployment never silently keeps the default.

    Not pydantic-settings: it ignores environment variables that match no field (the typo
    rule above is the point of this function), reads list values as JSON rather than
    comma-separated, and would be one more dependency for these thirty lines."""
    merged: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    sections = Settings.model_fields
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        section = next((s for s in sections if rest.startswith(s + "_")), None)
        if section is None:
            raise ConfigError(f"{name}: no configuration section matches")
        key = rest[len(section) + 1 :]
        model = sections[section].annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):  # every field of Settings is a section
            raise ConfigError(f"{name}: [{section}] is not a section")
        field = model.model_fields.get(key)
        if field is None:
            raise ConfigError(f"{name}: [{section}] has no key {key!r}")
        parsed: Any = value
        if getattr(field.annotation, "__origin__", None) is list:
            parsed = [part.strip() for part in value.split(",") if part.strip()]
        merged.setdefault(section, {})[key] = parsed
    return merged


def config_path(path: Path | None, environ: Mapping[str, str]) -> Path:
    """--config, else $DWEB_AGENT_CONFIG, else ./config/agent.toml, else the packaged defaults."""
    if path is not None:
        return path
    if ENV_PREFIX + "CONFIG" in environ:
        return Path(environ[ENV_PREFIX + "CONFIG"])
    if LOCAL_CONFIG_PATH.is_file():
        return LOCAL_CONFIG_PATH
    return PACKAGED_CONFIG_PATH


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    path = config_path(path, env)
    if not path.is_file():
        raise ConfigError(f"{path}: no such configuration file")
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    try:
        return Settings.model_validate(_env_overrides(raw, env))
    except ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
