"""The index of active sessions by MAC address."""

from capport.macindex import SessionsByMac
from capport.models import Device, Session

MAC = "02:00:00:00:00:11"


def session(session_id: int, ip: str, mac: str = MAC) -> Session:
    return Session(session_id, Device.parse(mac, ip), "click-through", 0.0, 60.0)


def test_index_of_unknown_mac_is_empty() -> None:
    index = SessionsByMac()

    assert index.of(MAC) == ()
    assert index.first(MAC) is None
    assert MAC not in index


def test_index_keeps_sessions_of_mac_in_order() -> None:
    index = SessionsByMac()
    first, second = session(1, "192.0.2.11"), session(2, "192.0.2.12")
    index.add(first)
    index.add(second)
    index.add(session(3, "192.0.2.13", mac="02:00:00:00:00:12"))

    assert index.of(MAC) == (first, second)
    assert index.first(MAC) == first


def test_index_add_replaces_entry_with_same_id() -> None:
    index = SessionsByMac()
    index.add(session(1, "192.0.2.11"))
    index.add(session(2, "192.0.2.12"))
    extended = Session(1, Device.parse(MAC, "192.0.2.11"), "click-through", 0.0, 90.0)
    index.add(extended)

    assert [s.expires_at for s in index.of(MAC)] == [90.0, 60.0]


def test_index_remove_leaves_the_others() -> None:
    index = SessionsByMac()
    first, second = session(1, "192.0.2.11"), session(2, "192.0.2.12")
    index.add(first)
    index.add(second)
    index.remove(first)

    assert index.of(MAC) == (second,)
    assert index.first(MAC) == second


def test_index_remove_of_last_session_drops_mac() -> None:
    index = SessionsByMac()
    only = session(1, "192.0.2.11")
    index.add(only)
    index.remove(only)
    index.remove(only)

    assert MAC not in index
