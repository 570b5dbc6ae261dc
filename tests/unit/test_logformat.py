"""Key=value log lines, hidden secrets, counted repeats and the [log] settings."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from capport.config import ConfigError, LogSection, load_config, parse_config
from capport.logformat import (
    ALWAYS_LOG,
    KeyValueFormatter,
    RepeatCounter,
    RepeatFilter,
    TextFormatter,
    escape_control,
    format_timestamp,
    one_line,
    quote_value,
    suppressed_note,
)
from capport.logs import configure_logging
from capport.reload import merged, restart_keys

BASE = {"gateway": {"interface": "lan0"}, "portal": {"address": "192.0.2.1"}}


def make_record(
    message: str = "Granted session %d.",
    args: tuple[object, ...] = (7,),
    level: int = logging.INFO,
    name: str = "capport.gateway",
    **extra: object,
) -> logging.LogRecord:
    record = logging.LogRecord(name, level, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    record.created = 1796400000.25
    return record


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    access = logging.getLogger("capport.access")
    saved_access = (access.handlers[:], access.level, access.propagate)
    yield
    configure_logging(LogSection(access_log="off"))
    root.handlers[:], root.level = saved
    access.handlers[:], access.level, access.propagate = saved_access
    logging.getLogger("capport.enforce").setLevel(logging.NOTSET)


def test_quote_value_bare_word() -> None:
    assert quote_value("02:00:00:00:00:11") == "02:00:00:00:00:11"


def test_quote_value_space_quoted() -> None:
    assert quote_value('a "b" c') == '"a \\"b\\" c"'


def test_quote_value_newline_escaped() -> None:
    assert quote_value("one\ntwo") == '"one\\ntwo"'


def test_quote_value_empty_and_equals() -> None:
    assert quote_value("") == '""'
    assert quote_value("a=b") == '"a=b"'


FORGED_PATH = "/\n2026-12-04 18:00:00,000 ERROR capport.daemon: fake"


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a\nb", "a\\nb"),
        ("a\rb", "a\\rb"),
        ("a\tb", "a\\tb"),
        ("a\x1b[31mb", "a\\x1b[31mb"),
        ("a\x00b", "a\\x00b"),
        ("a\x7fb", "a\\x7fb"),
        ("a\x85b", "a\\x85b"),
        ("a\u2028b", "a\\u2028b"),
        ("Café ü", "Café ü"),
    ],
)
def test_escape_control(raw: str, escaped: str) -> None:
    assert escape_control(raw) == escaped


def test_quote_value_escape_character_quoted() -> None:
    assert quote_value("a\x1bb") == '"a\\x1bb"'


def test_quote_value_line_separator_quoted() -> None:
    assert quote_value("a\u2028b") == '"a\\u2028b"'


def test_text_message_newline_escaped() -> None:
    record = make_record("%s GET %s 404 0.4 ms", ("192.0.2.11", FORGED_PATH))
    line = TextFormatter().format(record)
    assert "\n" not in line
    assert line.endswith(
        "GET /\\n2026-12-04 18:00:00,000 ERROR capport.daemon: fake 404 0.4 ms"
    )


def test_text_field_newline_escaped() -> None:
    line = TextFormatter().format(make_record(path=FORGED_PATH))
    assert "\n" not in line


def test_text_traceback_lines_indented() -> None:
    try:
        raise ValueError("bad\n2026-12-04 18:00:00,000 ERROR capport.daemon: fake")
    except ValueError:
        import sys

        record = make_record()
        record.exc_info = sys.exc_info()
    first, *rest = TextFormatter().format(record).split("\n")
    assert first.endswith("capport.gateway: Granted session 7.")
    assert rest
    assert all(line.startswith("  ") for line in rest)


def test_keyvalue_message_newline_escaped() -> None:
    record = make_record("%s GET %s 404 0.4 ms", ("192.0.2.11", FORGED_PATH))
    line = KeyValueFormatter().format(record)
    assert "\n" not in line


def test_timestamp_is_utc_with_milliseconds() -> None:
    assert format_timestamp(1796400000.25) == "2026-12-04T16:00:00.250Z"


def test_keyvalue_line_fields() -> None:
    line = KeyValueFormatter().format(make_record(session=7, mac="02:00:00:00:00:11"))
    assert line == (
        "ts=2026-12-04T16:00:00.250Z level=info logger=capport.gateway "
        'msg="Granted session 7." session=7 mac=02:00:00:00:00:11'
    )


def test_keyvalue_line_is_one_line_with_traceback() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        import sys

        record = make_record()
        record.exc_info = sys.exc_info()
    line = KeyValueFormatter().format(record)
    assert "\n" not in line
    assert "exc=" in line


def test_keyvalue_hides_secret_fields() -> None:
    record = make_record(password="hunter2", token="abc", voucher_code="K7QXM")
    line = KeyValueFormatter().format(record)
    assert "hunter2" not in line
    assert "abc" not in line.split("msg=")[1]
    assert "K7QXM" not in line
    assert "password=(hidden)" in line


def test_text_line_appends_extra_fields() -> None:
    line = TextFormatter().format(make_record(session=7))
    assert line.endswith("capport.gateway: Granted session 7. [session=7]")


def test_uvicorn_color_message_left_out() -> None:
    record = make_record(color_message="Started \x1b[36m%d\x1b[0m")
    assert "color_message" not in TextFormatter().format(record)
    assert "color_message" not in KeyValueFormatter().format(record)


def test_text_line_without_extra_unchanged() -> None:
    line = TextFormatter().format(make_record())
    assert line.endswith("capport.gateway: Granted session 7.")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def error(message: str = "Lookup of %s failed.", arg: str = "x") -> logging.LogRecord:
    return make_record(message, (arg,), level=logging.ERROR)


def test_repeat_filter_passes_first() -> None:
    assert RepeatFilter(60, FakeClock()).filter(error())


def test_repeat_filter_drops_identical_repeats_in_window() -> None:
    repeats = RepeatFilter(60, FakeClock())
    repeats.filter(error(arg="a"))
    assert not repeats.filter(error(arg="a"))
    assert not repeats.filter(error(arg="a"))


def test_repeat_filter_passes_other_arguments() -> None:
    repeats = RepeatFilter(60, FakeClock())
    assert repeats.filter(error(arg="192.0.2.12"))
    assert repeats.filter(error(arg="192.0.2.13"))


def test_repeat_filter_passes_other_logger() -> None:
    repeats = RepeatFilter(60, FakeClock())
    first = make_record("Failed.", (), level=logging.ERROR, name="capport.daemon")
    second = make_record("Failed.", (), level=logging.ERROR, name="capport.portal")
    assert repeats.filter(first)
    assert repeats.filter(second)


def test_repeat_filter_passes_other_level() -> None:
    repeats = RepeatFilter(60, FakeClock())
    assert repeats.filter(make_record("Failed.", (), level=logging.ERROR))
    assert repeats.filter(make_record("Failed.", (), level=logging.CRITICAL))


def test_repeat_filter_reports_count_after_window() -> None:
    clock = FakeClock()
    repeats = RepeatFilter(60, clock)
    for _ in range(4):
        repeats.filter(error(arg="a"))
    clock.now += 61
    record = error(arg="a")
    assert repeats.filter(record)
    assert record.repeated == 3


def test_repeat_filter_count_in_message() -> None:
    clock = FakeClock()
    repeats = RepeatFilter(60, clock)
    for _ in range(4):
        repeats.filter(error(arg="a"))
    clock.now += 61
    record = error(arg="a")
    repeats.filter(record)
    assert record.getMessage() == (
        "Lookup of a failed. 3 identical messages were suppressed before this one."
    )


def test_repeat_filter_count_of_one_singular() -> None:
    clock = FakeClock()
    repeats = RepeatFilter(60, clock)
    repeats.filter(error())
    repeats.filter(error())
    clock.now += 61
    record = error()
    repeats.filter(record)
    assert record.getMessage().endswith(
        " 1 identical message was suppressed before this one."
    )


def test_repeat_filter_no_count_without_repeats() -> None:
    clock = FakeClock()
    repeats = RepeatFilter(60, clock)
    repeats.filter(error())
    clock.now += 61
    record = error()
    assert repeats.filter(record)
    assert not hasattr(record, "repeated")
    assert record.getMessage() == "Lookup of x failed."


def test_repeat_filter_passes_always_log_records() -> None:
    repeats = RepeatFilter(60, FakeClock())
    assert repeats.filter(error(arg="a"))
    assert repeats.filter(
        make_record("Lookup of %s failed.", ("a",), level=logging.ERROR, **ALWAYS_LOG)
    )


def test_repeat_filter_groups_badly_formatted_record() -> None:
    repeats = RepeatFilter(60, FakeClock())
    assert repeats.filter(make_record("%d items", ("x",), level=logging.ERROR))
    assert not repeats.filter(make_record("%d items", ("x",), level=logging.ERROR))


def test_suppressed_note_empty_without_repeats() -> None:
    assert suppressed_note(0) == ""


def test_repeat_counter_bounded() -> None:
    clock = FakeClock()
    counter = RepeatCounter(60, clock, max_keys=10)
    for number in range(100):
        assert counter.check(number) == 0
    assert len(counter._seen) <= 10


def test_repeat_filter_keeps_distinct_messages() -> None:
    repeats = RepeatFilter(60, FakeClock())
    assert repeats.filter(error("First problem %s."))
    assert repeats.filter(error("Second problem %s."))


def test_repeat_filter_passes_info() -> None:
    repeats = RepeatFilter(60, FakeClock())
    assert repeats.filter(make_record())
    assert repeats.filter(make_record())


def test_repeat_filter_passes_warnings() -> None:
    repeats = RepeatFilter(60, FakeClock())
    record = make_record("MAC %s seen twice.", ("x",), level=logging.WARNING)
    assert repeats.filter(record)
    assert repeats.filter(record)


def test_config_log_defaults() -> None:
    log = parse_config(BASE).log
    assert log.format == "text"
    assert log.access_log == "stderr"
    assert log.levels == {}


def test_config_log_levels_per_logger() -> None:
    document = {**BASE, "log": {"levels": {"capport.enforce": "debug"}}}
    assert parse_config(document).log.levels == {"capport.enforce": "debug"}


def test_config_log_level_invalid() -> None:
    document = {**BASE, "log": {"levels": {"capport.enforce": "loud"}}}
    with pytest.raises(ConfigError, match="log.levels"):
        parse_config(document)


def test_config_log_keys_apply_on_reload() -> None:
    old = parse_config(BASE)
    new = parse_config({**BASE, "log": {"format": "keyvalue", "access_log": "off"}})
    assert restart_keys(old, new) == []
    assert merged(old, new).log.format == "keyvalue"
    assert merged(old, new).log.access_log == "off"


def test_example_configuration_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "capport.toml"
    log = load_config(example).log
    assert log.format == "text"
    assert log.repeat_window == 60


def test_config_log_format_invalid() -> None:
    with pytest.raises(ConfigError, match="log.format"):
        parse_config({**BASE, "log": {"format": "json"}})


@pytest.mark.usefixtures("restore_logging")
def test_configured_keyvalue_reaches_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSection(format="keyvalue", access_log="off"))
    logging.getLogger("capport.gateway").warning(
        "Session %d ended.", 5, extra={"session": 5}
    )
    err = capsys.readouterr().err
    assert (
        'level=warning logger=capport.gateway msg="Session 5 ended." session=5' in err
    )


@pytest.mark.usefixtures("restore_logging")
def test_configured_repeats_collapsed(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSection(access_log="off"))
    for _ in range(5):
        logging.getLogger("capport.enforce").error("Listing failed: %d", 4)
    err = capsys.readouterr().err
    assert err.count("Listing failed") == 1


@pytest.mark.usefixtures("restore_logging")
def test_configured_distinct_errors_all_logged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(LogSection(access_log="off"))
    daemon = logging.getLogger("capport.daemon")
    for reason in ("responder.port: not a number", "session.duration: bad", "toml"):
        daemon.error("Reload failed; the running configuration is kept: %s", reason)
    err = capsys.readouterr().err
    assert err.count("Reload failed") == 3


@pytest.mark.usefixtures("restore_logging")
def test_configured_always_log_repeats_each_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging(LogSection(access_log="off"))
    daemon = logging.getLogger("capport.daemon")
    for _ in range(2):
        daemon.error("Reload failed: %s", "bad = [", extra=ALWAYS_LOG)
    err = capsys.readouterr().err
    assert err.count("Reload failed") == 2
    assert "always_log" not in err


@pytest.mark.usefixtures("restore_logging")
def test_configured_logger_level(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(
        LogSection(
            level="warning", levels={"capport.enforce": "debug"}, access_log="off"
        )
    )
    logging.getLogger("capport.enforce").debug("Detail shown.")
    logging.getLogger("capport.portal").info("Detail hidden.")
    err = capsys.readouterr().err
    assert "Detail shown." in err
    assert "Detail hidden." not in err


@pytest.mark.usefixtures("restore_logging")
def test_reload_resets_dropped_logger_level() -> None:
    configure_logging(LogSection(levels={"capport.enforce": "debug"}, access_log="off"))
    configure_logging(LogSection(access_log="off"))
    assert logging.getLogger("capport.enforce").level == logging.NOTSET


@pytest.mark.usefixtures("restore_logging")
def test_access_log_to_file(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    configure_logging(LogSection(access_log=str(path)))
    logging.getLogger("capport.access").info("192.0.2.11 GET / 200 1.0 ms")
    logging.getLogger("capport.gateway").info("Not an access line.")
    assert path.read_text().count("\n") == 1
    assert "GET / 200" in path.read_text()


@pytest.mark.usefixtures("restore_logging")
def test_access_log_file_unwritable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="log.access_log"):
        configure_logging(LogSection(access_log=str(tmp_path / "no" / "access.log")))


@pytest.mark.usefixtures("restore_logging")
def test_unwritable_access_log_changes_nothing(tmp_path: Path) -> None:
    configure_logging(LogSection(access_log="off"))
    root_handlers = logging.getLogger().handlers[:]
    with pytest.raises(ConfigError):
        configure_logging(
            LogSection(format="keyvalue", access_log=str(tmp_path / "no" / "a.log"))
        )
    assert logging.getLogger().handlers == root_handlers


@pytest.mark.usefixtures("restore_logging")
def test_text_access_line_not_repeated(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSection())
    logging.getLogger("capport.access").info(
        "192.0.2.11 GET / 200 1.0 ms", extra={"client": "192.0.2.11", "status": 200}
    )
    err = capsys.readouterr().err
    assert err.rstrip().endswith("capport.access: 192.0.2.11 GET / 200 1.0 ms")


@pytest.mark.usefixtures("restore_logging")
def test_text_access_line_escapes_path(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    configure_logging(LogSection(access_log=str(path)))
    logging.getLogger("capport.access").info(
        "%s GET %s %d %.1f ms", "192.0.2.11", FORGED_PATH, 404, 0.4
    )
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith("capport.daemon: fake 404 0.4 ms")


@pytest.mark.usefixtures("restore_logging")
def test_keyvalue_access_line_escapes_path(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    configure_logging(LogSection(format="keyvalue", access_log=str(path)))
    logging.getLogger("capport.access").info(
        "%s GET %s 404 0.4 ms", "192.0.2.11", FORGED_PATH, extra={"path": FORGED_PATH}
    )
    assert len(path.read_text().splitlines()) == 1


@pytest.mark.usefixtures("restore_logging")
def test_keyvalue_access_line_fields(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LogSection(format="keyvalue"))
    logging.getLogger("capport.access").info(
        "192.0.2.11 GET / 200 1.0 ms", extra={"client": "192.0.2.11", "status": 200}
    )
    err = capsys.readouterr().err
    assert "logger=capport.access" in err
    assert err.rstrip().endswith("client=192.0.2.11 status=200")


def test_gateway_grant_logs_session_fields(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio

    from capport.enforce.base import MemoryEnforcer
    from capport.gateway import Gateway
    from capport.models import Device
    from capport.neighbours import MemoryNeighbours
    from capport.store.sqlite import SQLiteStore

    device = Device.parse("02:00:00:00:00:11", "192.0.2.11")
    store = SQLiteStore(tmp_path / "s.db")
    gateway = Gateway(store, MemoryEnforcer(), MemoryNeighbours(), 600)

    async def scenario() -> None:
        await store.open()
        await gateway.grant(device, "click-through")
        await store.close()

    caplog.set_level(logging.INFO, "capport.gateway")
    asyncio.run(scenario())
    [record] = [r for r in caplog.records if r.getMessage().startswith("Granted")]
    line = KeyValueFormatter().format(record)
    assert "mac=02:00:00:00:00:11 ip=192.0.2.11 method=click-through" in line


def test_one_line_joins_heading_and_items() -> None:
    text = "gw.toml is invalid:\n  session.quota_total: invalid size\n  a.b: bad"

    assert one_line(text) == (
        "gw.toml is invalid: session.quota_total: invalid size; a.b: bad"
    )


def test_one_line_keeps_single_line() -> None:
    assert one_line("firewall rejected the table") == "firewall rejected the table"
