"""Every bad input is one line and status 2: hypothesis over the CLI's argv and over YAML
configurations built from the real settings schema. Never a traceback."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from bot import cli
from bot.errors import ConfigError
from bot.settings import Settings, load_settings

FIXTURE_LOG = Path(__file__).parent.parent / "fixtures" / "howto" / "maillog"
FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# ---------------------------------------------------------------------- argv

WORDS = st.sampled_from(
    [
        "trace",
        "doctor",
        "--config",
        "--log",
        "--format",
        "--tz",
        "--log-tz",
        "--year",
        "--lines",
        "--help",
        "json",
        "text",
        "xml",
        "Nope",
        "UTC",
        "Europe/Berlin",
        "../../etc/passwd",
        "/",
        "",
        "99999",
        "1969",
        "2024",
        "-1",
        "sender2@example.net",
        "2024-05-13",
        "10:00",
        "@example.net",
        "/nonexistent/mailtrace.yaml",
        str(FIXTURE_LOG),
        "\x00",
        "-",
        "--",
    ]
)
ANY_ARGS = st.lists(st.one_of(WORDS, st.text(max_size=12)), max_size=8)
ARGV = st.one_of(ANY_ARGS, ANY_ARGS.map(lambda args: ["trace", *args]))


@FUZZ
@given(argv=ARGV)
@example(argv=["trace", "trace", "--config", "\n"])  # a line break in a path the error quotes
@example(argv=["trace", "trace", "--config", "trace", "\n"])  # …in an unrecognized argument
def test_any_argv_ends_in_a_status_never_a_traceback(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the arguments, `mailtrace` ends with 0-3 and writes no traceback; a usage
    error (status 2) starts with one `mailtrace…:` line (a query's grammar error then shows the
    query usage, as /mailtrace does)."""
    monkeypatch.delenv("MAILTRACE_CONFIG", raising=False)
    try:
        status: int | str | None = cli.main(argv)
    except SystemExit as exc:  # argparse (bad arguments, --help)
        status = exc.code
    err = capsys.readouterr().err
    assert status in (0, 1, 2, 3)
    assert "Traceback" not in err
    if status == 2 and err:
        lines = err.strip().splitlines()
        assert lines[0].startswith("mailtrace"), err
        assert len(lines) == 1 or lines[1].startswith("Usage: /mailtrace"), err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--log-tz", "Nope"], "unknown time zone 'Nope'"),
        (["--tz", "Nope"], "unknown time zone 'Nope'"),
        (["--year", "99999"], "must be between 1970 and 2200, not 99999"),
        (["--year", "1969"], "must be between 1970 and 2200, not 1969"),
        (["--year", "soon"], "must be a year like 2024"),
    ],
)
def test_bad_trace_options_are_one_line_and_status_2(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The options the issue found (a zone that does not exist, a year out of range) are one
    line and status 2, not a pydantic traceback."""
    with pytest.raises(SystemExit) as exited:
        cli.main(["trace", "sender2@example.net", "--log", str(FIXTURE_LOG), *argv])
    err = capsys.readouterr().err
    assert exited.value.code == 2
    [line] = err.strip().splitlines()
    assert expected in line


# ---------------------------------------------------------------------- configuration

JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.text(max_size=8), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(), max_size=2),
)


def value_for(annotation: Any, depth: int) -> st.SearchStrategy[Any]:
    """Values of the field's own type (often out of range), mixed with values of other types."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return st.one_of(document_for(annotation, depth + 1), JUNK) if depth < 3 else JUNK
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(value_for(a, depth) for a in args))
    if origin is tuple:
        return st.one_of(st.lists(value_for(args[0], depth), max_size=3), JUNK)
    if origin is typing.Literal:
        return st.one_of(st.sampled_from(args), JUNK)
    plain: dict[Any, st.SearchStrategy[Any]] = {
        bool: st.booleans(),
        int: st.integers(min_value=-5, max_value=100_000),
        float: st.floats(min_value=-5, max_value=1e6),
        str: st.sampled_from(["mx1", "UTC", "Nope/Zone", "127.0.0.1", "", "a b", "../x", "U1"]),
        Path: st.just("."),
        type(None): st.none(),
    }
    return st.one_of(plain.get(annotation, st.nothing()), JUNK)


def document_for(model: type[BaseModel], depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """A mapping with some of `model`'s fields (and now and then an unknown key)."""
    fields = {
        name: value_for(info.annotation, depth)
        for name, info in model.model_fields.items()
        if name != "base_dir"
    }
    known = st.fixed_dictionaries({}, optional=fields)
    return st.one_of(
        known,
        st.builds(lambda d, k: {**d, k: 1}, known, st.sampled_from(["colour", "server"])),
    )


DOCUMENT = st.one_of(document_for(Settings), JUNK)


@FUZZ
@given(document=DOCUMENT)
def test_any_configuration_loads_or_is_a_config_error(document: Any, tmp_path: Path) -> None:
    """A YAML configuration of any shape either loads or raises ConfigError (whose message is
    one line); nothing else escapes the loader."""
    path = tmp_path / "mailtrace.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    outcome: Settings | ConfigError
    try:
        outcome = load_settings(path)
    except ConfigError as exc:
        outcome = exc
    assert isinstance(outcome, Settings) or str(outcome).strip()


@pytest.mark.parametrize(
    "text",
    [
        "servers: [",
        "\x00",
        "servers:\n  - name: mx1\n    logs: !!python/object:os.system x\n",
        "- 1",
    ],
)
def test_broken_yaml_is_a_config_error(text: str, tmp_path: Path) -> None:
    """YAML that does not parse, or that asks for a Python object, is a ConfigError."""
    path = tmp_path / "mailtrace.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError):
        load_settings(path)
