"""Configuration: a YAML file validated with pydantic; secrets only from the environment or files.

Strategy: the YAML describes servers and limits and is safe to check into a repository; it has no
field that could hold a secret. Slack tokens come from the environment (see `SlackSecrets`), SSH
keys from key files or the agent. Relative paths in the YAML are relative to the YAML file, so a
configuration travels with its directory (the demo does).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.errors import ConfigError
from bot.sources.listing_commands import split_glob
from bot.sources.queue_commands import check_config_dir

if TYPE_CHECKING:
    import yaml

DEFAULT_LOGS = ("/var/log/maillog*", "/var/log/mail.log*")


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_lines: int = Field(200_000, ge=100)  # per server and query, all passes together
    max_messages: int = Field(300, ge=1)  # in one answer
    connect_timeout: float = Field(10, gt=0)
    command_timeout: float = Field(120, gt=0)  # per remote command (wrapped in `timeout`)
    query_timeout: float = Field(180, gt=0)  # the whole query, all servers
    max_sessions: int = Field(8, ge=1, le=64)  # channels at once per SSH connection
    max_hops: int = Field(8, ge=0)
    # Pass 2 first reads this many megabytes around each hit in large plain files (0: off).
    pass2_region_mb: float = Field(16, ge=0)
    # Pass 2 rides in pass 1's remote command while the files searched total at most this
    # many megabytes (and no region applies to them); 0: always a command of its own.
    pass2_ahead_mb: float = Field(16, ge=0)


class WatchConfig(BaseModel):
    """Follow-ups: "tell me when it's done" watches (Slack) and `mailtrace watch` (CLI)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The SQLite file that keeps Slack watches across restarts; default: watches.sqlite3 beside
    # the audit log, else $XDG_STATE_HOME/mailtrace (~/.local/state/mailtrace).
    database: str | None = None
    min_interval: float = Field(60, ge=0.2)  # seconds between the first polls of a watch
    max_interval: float = Field(1800, ge=1)  # the back-off stops growing here
    polls_per_server: int = Field(2, ge=1, le=16)  # queue checks at once per server
    max_per_user: int = Field(5, ge=1)
    max_per_workspace: int = Field(50, ge=1)
    max_recipients: int = Field(20, ge=1, le=50)  # per watch


class ServerConfig(BaseModel):
    """One Postfix server: where its logs are and how to reach it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    local: bool = False  # read files on this machine (the demo, or a bot on the mail server)
    source: Literal["files", "journald"] = "files"  # journald: read with journalctl
    journal_directory: str | None = None  # journalctl -D DIR; default: the system journal
    logs: tuple[str, ...] = DEFAULT_LOGS
    timezone: str = "UTC"
    # For yearless formats: the year the files were last written (instead of their mtime).
    year: int | None = Field(None, ge=1970, le=2200)
    aliases: tuple[str, ...] = ()  # names/addresses other servers' relay= fields use for it
    # Its maximal_queue_lifetime (Postfix time syntax, default unit days): when a deferred
    # mail will be given up. The logs never say it.
    queue_lifetime: str = Field("5d", pattern=r"^[0-9]{1,5}[smhdw]?$")
    # A central log host (rsyslog collecting several mail servers' lines): each line belongs to
    # the server its syslog HOSTNAME names, and hops between them are followed in these files.
    central: bool = False
    # For a central log host: how relay= fields name each host whose lines it has, beyond its
    # own name (e.g. {mx2: ["mx2.example.com", "10.0.0.12"]}).
    host_aliases: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # Read the live queue (postqueue, postconf) for mail that is not final; off where the logs
    # are copies (the demo). postconf's maximal_queue_lifetime, when read, wins over the above.
    queue: bool = True
    postfix_config_dir: str | None = None  # postqueue/postconf -c DIR (a non-default instance)
    # SSH (ignored when local)
    host: str | None = None
    port: int = Field(22, ge=1, le=65535)
    user: str | None = None
    keys: tuple[str, ...] = ()  # private key files; the agent (SSH_AUTH_SOCK) is used too
    use_agent: bool = True
    known_hosts: str | None = None  # default: ~/.ssh/known_hosts
    insecure_no_host_key_check: bool = False  # loudly logged; never in production
    jump: str | None = None  # another server's name, or user@host:port
    limits: Limits | None = None  # per-server override of the global limits

    @field_validator("logs")
    @classmethod
    def _globs_are_safe(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for glob in value:
            try:
                split_glob(glob)
            except ConfigError as exc:  # pydantic reports ValueErrors with the field's path
                raise ValueError(str(exc)) from exc
        return value

    @field_validator("postfix_config_dir")
    @classmethod
    def _config_dir_is_plain(cls, value: str | None) -> str | None:
        return check_config_dir(value) if value is not None else None

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _reachable(self) -> ServerConfig:
        if not self.local and not self.host:
            raise ValueError(f"server {self.name}: set `host` (SSH) or `local: true`")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def queue_lifetime_delta(self) -> timedelta:
        """`queue_lifetime` as a duration ("5d", "60s"; a bare number is days, as in Postfix)."""
        unit = self.queue_lifetime[-1] if self.queue_lifetime[-1].isalpha() else "d"
        number = int(self.queue_lifetime.rstrip("smhdw"))
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
        return timedelta(seconds=number * seconds)

    def names(self) -> set[str]:
        """Every name this server may appear under in another server's relay= field."""
        names = {self.name.lower(), *(a.lower() for a in self.aliases)}
        if self.host:
            names.add(self.host.lower())
        return names


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "UTC"  # the asker's zone when none is known (the CLI; Slack gives one)
    default_days: int | None = Field(7, ge=1)  # window without a date; None: all logs
    servers: tuple[ServerConfig, ...] = ()
    limits: Limits = Limits()
    slack: SlackConfig | None = None
    watch: WatchConfig = WatchConfig()
    base_dir: Path = Path()

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        return ServerConfig._zone_exists(value)

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        seen: set[str] = set()
        for server in self.servers:
            if server.name in seen:
                raise ValueError(f"server name {server.name!r} is used twice")
            seen.add(server.name)
        names = {s.name for s in self.servers}
        for server in self.servers:
            named_jump = server.jump and "@" not in server.jump and ":" not in server.jump
            if named_jump and server.jump not in names:
                raise ValueError(
                    f"server {server.name}: jump host {server.jump!r} is not configured"
                )
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def server(self, name: str) -> ServerConfig:
        for server in self.servers:
            if server.name == name:
                return server
        raise ConfigError(f"no server named {name!r}")

    def limits_for(self, server: ServerConfig) -> Limits:
        return server.limits or self.limits


class SlackConfig(BaseModel):
    """Who may ask, and where; the tokens themselves come from the environment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("api_base_url")
    @classmethod
    def _token_stays_encrypted(cls, value: str | None) -> str | None:
        """The bot token travels with every call: plain http only to this machine."""
        if value is None:
            return value
        parsed = urlsplit(value)
        loopback = parsed.hostname in ("localhost", "127.0.0.1", "::1") or (
            parsed.hostname or ""
        ).startswith("127.")
        if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
            raise ValueError("api_base_url must be https:// (plain http only to loopback)")
        return value

    allowed_users: tuple[str, ...] = ()  # Slack user IDs; empty = anyone in the workspace
    allowed_usergroups: tuple[str, ...] = ()  # user group IDs (members may ask)
    allowed_channels: tuple[str, ...] = ()  # channel IDs; empty = any channel
    # Who may press "Retry now" (postqueue -i on the server): user IDs and user group IDs.
    # Nobody when both are empty.
    operators: tuple[str, ...] = ()
    operator_usergroups: tuple[str, ...] = ()
    audit_log: str | None = None  # JSON lines file; default: stderr log only
    rate_limit_per_minute: int = Field(6, ge=1)
    max_concurrent: int = Field(4, ge=1)
    api_base_url: str | None = None  # GovSlack, a proxy, or a test fake (https, or loopback)
    http_port: int = Field(3000, ge=0, le=65535)
    http_host: str = "127.0.0.1"
    # Whom teammates should ask when servers or log files need attention, as plain text (e.g.
    # "the mail team in #mail-ops"); answers in Slack name it instead of operator commands.
    # answer everyone in this language ("en" or "ja"); None: each asker's Slack locale
    language: Literal["en", "ja"] | None = None
    contact: str | None = None


Settings.model_rebuild()


def load_settings(path: str | Path) -> Settings:
    """Read and validate a YAML configuration; errors name the file and the field."""
    import yaml  # here, not at the top: `--log` needs no YAML

    path = Path(path)
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML{_yaml_where(exc)}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping (`servers:` and so on)")
    servers = raw.get("servers") or []
    if not isinstance(servers, list):
        raise ConfigError(f"{path}: servers: a list is expected (`- name: mx1 …` entries)")
    base = path.resolve().parent
    raw = {**raw, "base_dir": base}
    try:
        raw["servers"] = [_resolve_paths(s, base) for s in servers]
        settings = Settings.model_validate(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_readable(exc)}") from exc
    if not settings.servers:  # every search would then say nothing, for no reason
        raise ConfigError(f"{path}: servers: list at least one server (`- name: mx1 …`)")
    return settings


def local_settings(
    globs: list[str], zone: str = "UTC", year: int | None = None, *, central: bool = False
) -> Settings:
    """Settings for `--log PATH`: one local source with these files."""
    resolved = [str(Path(g).expanduser().absolute()) for g in globs]
    server = ServerConfig(
        name="local", local=True, logs=tuple(resolved), timezone=zone, year=year, central=central
    )
    return Settings(timezone=zone, default_days=None, servers=(server,))


def _yaml_where(exc: yaml.YAMLError) -> str:
    """' at line 4, column 7: mapping values are not allowed here' (one line, 1-based)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return where + (f": {problem}" if problem else "")


_LISTS = ("logs", "keys", "aliases")


def _resolve_paths(server: Any, base: Path) -> Any:
    if not isinstance(server, dict):
        return server
    out = dict(server)
    for field in _LISTS:  # `logs: "/var/log/mail.log*"`: one string where a list is expected
        if isinstance(out.get(field), str):
            name = out.get("name", "?")
            raise ConfigError(
                f'servers ({name}): {field}: a list is expected, e.g. {field}: ["{out[field]}"]'
            )
    if out.get("local") and isinstance(out.get("logs"), list):
        out["logs"] = [_absolute(str(g), base) for g in out["logs"]]
    if isinstance(out.get("keys"), list):
        out["keys"] = [_absolute(str(k), base) for k in out["keys"]]
    if isinstance(out.get("known_hosts"), str) and out["known_hosts"]:
        out["known_hosts"] = _absolute(str(out["known_hosts"]), base)
    return out


def _absolute(path: str, base: Path) -> str:
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _readable(exc: ValidationError) -> str:
    """Each error as `servers.0.port: Input should be …`, joined with semicolons."""
    parts = []
    for err in exc.errors():
        loc = [str(x) for x in err["loc"]]
        where = ".".join(loc) or "top level"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
