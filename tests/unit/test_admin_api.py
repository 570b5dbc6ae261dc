"""The admin API over a real Gateway and store, with in-memory firewall."""

from __future__ import annotations

import csv
import io
import logging
import sys
from collections.abc import Iterator
from ipaddress import IPv6Address
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from capport.auth.passwords import verify_password
from capport.auth.vouchers import code_digest, normalise_code
from capport.errors import EnforcementError
from capport.models import Device

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from admin_app import (  # noqa: E402
    DEVICE_BYTES,
    DOWN_BYTES,
    TOKEN_NAME,
    Admin,
    start_admin,
)

MAC = "02:00:00:00:00:11"
IP = "192.0.2.11"
OTHER_MAC = "02:00:00:00:00:12"
OTHER_IP = "192.0.2.12"
DEVICE = Device.parse(MAC, IP)


@pytest.fixture
def admin() -> Iterator[Admin]:
    yield from start_admin()


def error_of(response) -> tuple[str | None, str]:  # type: ignore[no-untyped-def]
    body = response.json()
    return body["field"], body["error"]


# Bearer tokens


def test_request_without_token_is_401(admin: Admin) -> None:
    response = admin.client.get("/api/v1/clients")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert error_of(response)[0] == "Authorization"


def test_request_with_wrong_token_is_401(admin: Admin) -> None:
    headers = {"Authorization": "Bearer capport_not-a-real-token"}
    response = admin.client.get("/api/v1/clients", headers=headers)
    assert response.status_code == 401


def test_request_with_basic_auth_is_401(admin: Admin) -> None:
    headers = {"Authorization": f"Basic {admin.token}"}
    assert admin.client.get("/api/v1/status", headers=headers).status_code == 401


def test_revoked_token_is_401(admin: Admin) -> None:
    assert admin.get("/api/v1/clients").status_code == 200
    admin.call(admin.store.remove_token, TOKEN_NAME)
    assert admin.get("/api/v1/clients").status_code == 401


def test_valid_token_records_last_use(admin: Admin) -> None:
    admin.get("/api/v1/status")
    tokens = admin.call(admin.store.tokens)
    assert tokens[0].last_used_at is not None


def test_openapi_needs_token(admin: Admin) -> None:
    assert admin.client.get("/api/v1/openapi.json").status_code == 401


def test_openapi_lists_every_path(admin: Admin) -> None:
    paths = admin.get("/api/v1/openapi.json").json()["paths"]
    for path in (
        "/api/v1/status",
        "/api/v1/clients",
        "/api/v1/clients/{mac}",
        "/api/v1/clients/{mac}/extend",
        "/api/v1/trusted",
        "/api/v1/trusted/{mac}",
        "/api/v1/blocked",
        "/api/v1/blocked/{mac}",
        "/api/v1/users",
        "/api/v1/users/{name}",
        "/api/v1/users/{name}/password",
        "/api/v1/vouchers",
        "/api/v1/vouchers/{voucher_id}",
        "/api/v1/vouchers.csv",
        "/api/v1/history",
        "/metrics",
    ):
        assert path in paths


def test_openapi_declares_bearer_scheme(admin: Admin) -> None:
    schemes = admin.get("/api/v1/openapi.json").json()["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"


def test_metrics_need_token_by_default(admin: Admin) -> None:
    assert admin.client.get("/metrics").status_code == 401


def test_metrics_open_when_configured() -> None:
    for admin in start_admin(metrics_require_token=False):
        assert admin.client.get("/metrics").status_code == 200
        assert admin.client.get("/api/v1/status").status_code == 401


def test_control_socket_app_needs_no_token() -> None:
    for admin in start_admin(require_token=False):
        assert admin.client.get("/api/v1/clients").status_code == 200


# Cross-origin requests


def test_foreign_origin_on_delete_is_403(admin: Admin) -> None:
    admin.grant(MAC, IP)
    headers = {"Origin": "http://evil.example"}
    response = admin.delete(f"/api/v1/clients/{MAC}", headers=headers)
    assert response.status_code == 403
    assert error_of(response)[0] == "Origin"
    assert DEVICE in admin.enforcer.devices


def test_foreign_origin_on_post_is_403(admin: Admin) -> None:
    response = admin.client.post(
        "/api/v1/clients",
        json={"mac": MAC, "ip": IP},
        headers={**admin.auth, "Origin": "null"},
    )
    assert response.status_code == 403
    assert admin.enforcer.devices == {}


def test_cross_site_fetch_is_403(admin: Admin) -> None:
    response = admin.client.put(
        f"/api/v1/blocked/{MAC}",
        headers={**admin.auth, "Sec-Fetch-Site": "cross-site"},
    )
    assert response.status_code == 403
    assert error_of(response)[0] == "Sec-Fetch-Site"


def test_same_origin_change_is_allowed(admin: Admin) -> None:
    response = admin.client.post(
        "/api/v1/clients",
        json={"mac": MAC, "ip": IP},
        headers={**admin.auth, "Origin": "http://testserver"},
    )
    assert response.status_code == 201


def test_foreign_origin_on_get_is_allowed(admin: Admin) -> None:
    response = admin.client.get(
        "/api/v1/clients", headers={**admin.auth, "Origin": "http://evil.example"}
    )
    assert response.status_code == 200


# Bad requests


def test_invalid_json_is_400(admin: Admin) -> None:
    response = admin.client.post(
        "/api/v1/clients",
        content=b'{"mac": ',
        headers={**admin.auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    field, error = error_of(response)
    assert field == "body"
    assert "not valid JSON" in error


def test_body_that_is_not_an_object_is_400(admin: Admin) -> None:
    response = admin.post("/api/v1/clients", [MAC, IP])
    assert response.status_code == 400
    assert error_of(response)[0] == "body"


def test_missing_body_is_400(admin: Admin) -> None:
    response = admin.client.post("/api/v1/clients", headers=admin.auth)
    assert response.status_code == 400


def test_wrong_type_is_422(admin: Admin) -> None:
    response = admin.post("/api/v1/clients", {"mac": MAC, "ip": IP, "duration": "1h"})
    assert response.status_code == 422
    assert error_of(response)[0] == "duration"


def test_missing_field_is_422(admin: Admin) -> None:
    response = admin.post("/api/v1/clients", {"ip": IP})
    assert response.status_code == 422
    assert error_of(response) == ("mac", "required field is missing")


def test_unknown_field_is_422(admin: Admin) -> None:
    response = admin.post("/api/v1/clients", {"mac": MAC, "ip": IP, "minutes": 5})
    assert response.status_code == 422
    assert error_of(response)[0] == "minutes"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mac": "02:00:00:00:00", "ip": IP}, "mac"),
        ({"mac": MAC, "ip": "192.0.2.300"}, "ip"),
        ({"mac": MAC, "ip": "2001:db8::1"}, "ip"),
        ({"mac": MAC, "ip": IP, "duration": 0}, "duration"),
        ({"mac": MAC, "ip": IP, "duration": -5}, "duration"),
        ({"mac": MAC, "ip": IP, "duration": 366 * 86400}, "duration"),
        ({"mac": 17, "ip": IP}, "mac"),
    ],
)
def test_invalid_grant_is_422(
    admin: Admin, body: dict[str, object], field: str
) -> None:
    response = admin.post("/api/v1/clients", body)
    assert response.status_code == 422
    assert error_of(response)[0] == field
    assert admin.enforcer.devices == {}


def test_invalid_mac_in_path_is_422(admin: Admin) -> None:
    response = admin.delete("/api/v1/clients/not-a-mac")
    assert response.status_code == 422
    field, error = error_of(response)
    assert field == "mac"
    assert "not-a-mac" in error


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/api/v1/clients/{MAC}"),
        ("DELETE", f"/api/v1/clients/{MAC}"),
    ],
)
def test_unknown_mac_is_404(admin: Admin, method: str, path: str) -> None:
    response = admin.client.request(method, path, headers=admin.auth)
    assert response.status_code == 404
    assert error_of(response)[0] == "mac"


def test_extend_unknown_mac_is_404(admin: Admin) -> None:
    response = admin.post(f"/api/v1/clients/{MAC}/extend", {"seconds": 60})
    assert response.status_code == 404


def test_extend_without_seconds_is_422(admin: Admin) -> None:
    admin.grant(MAC, IP)
    response = admin.post(f"/api/v1/clients/{MAC}/extend", {})
    assert response.status_code == 422
    assert error_of(response)[0] == "seconds"


def test_unknown_path_is_404_json(admin: Admin) -> None:
    response = admin.get("/api/v1/nothing")
    assert response.status_code == 404
    assert "/api/v1/nothing" in error_of(response)[1]


def test_wrong_method_is_405_json(admin: Admin) -> None:
    response = admin.client.patch("/api/v1/clients", headers=admin.auth)
    assert response.status_code == 405
    assert "PATCH" in error_of(response)[1]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("sort=colour", "sort"),
        ("mac=zz", "mac"),
        ("ip=nowhere", "ip"),
        ("descending=maybe", "descending"),
    ],
)
def test_invalid_client_filter_is_422(admin: Admin, query: str, field: str) -> None:
    response = admin.get(f"/api/v1/clients?{query}")
    assert response.status_code == 422
    assert error_of(response)[0] == field


@pytest.mark.parametrize("hours", ["0", "745", "a"])
def test_invalid_history_hours_is_422(admin: Admin, hours: str) -> None:
    response = admin.get(f"/api/v1/history?hours={hours}")
    assert response.status_code == 422
    assert error_of(response)[0] == "hours"


# Clients


def test_grant_authorises_device(admin: Admin) -> None:
    body = admin.grant(MAC, IP, duration=600)
    assert admin.enforcer.devices == {DEVICE: 600}
    assert body["method"] == "admin"
    assert body["remaining"] == 600
    sessions = admin.call(admin.store.active_sessions)
    assert [s.id for s in sessions] == [body["session"]]


def test_grant_without_duration_uses_session_duration(admin: Admin) -> None:
    response = admin.post("/api/v1/clients", {"mac": MAC.upper(), "ip": IP})
    assert response.status_code == 201
    assert response.json()["mac"] == MAC
    assert admin.enforcer.devices == {DEVICE: 3600}


def test_revoke_cuts_device_off(admin: Admin) -> None:
    admin.grant(MAC, IP)
    response = admin.delete(f"/api/v1/clients/{MAC}")
    assert response.status_code == 200
    assert [row["mac"] for row in response.json()["revoked"]] == [MAC]
    assert admin.enforcer.devices == {}
    assert DEVICE in admin.enforcer.flushed


def test_get_client_returns_its_sessions(admin: Admin) -> None:
    admin.grant(MAC, IP)
    admin.grant(OTHER_MAC, OTHER_IP)
    rows = admin.get(f"/api/v1/clients/{MAC}").json()["clients"]
    assert [(row["mac"], row["ip"]) for row in rows] == [(MAC, IP)]


def test_extend_moves_store_and_kernel_deadline(admin: Admin) -> None:
    granted = admin.grant(MAC, IP, duration=600)
    response = admin.post(f"/api/v1/clients/{MAC}/extend", {"seconds": 300})
    assert response.status_code == 200
    row = response.json()["extended"][0]
    assert 899 <= row["remaining"] <= 900
    assert 899 <= admin.enforcer.devices[DEVICE] <= 900
    stored = admin.call(admin.store.active_sessions)[0]
    assert stored.expires_at - granted["expires"] == pytest.approx(300, abs=2)


def test_list_filters_by_method(admin: Admin) -> None:
    admin.grant(MAC, IP)
    assert len(admin.get("/api/v1/clients?method=admin").json()["clients"]) == 1
    assert admin.get("/api/v1/clients?method=voucher").json()["clients"] == []


def test_list_filters_by_ip(admin: Admin) -> None:
    admin.grant(MAC, IP)
    admin.grant(OTHER_MAC, OTHER_IP)
    rows = admin.get(f"/api/v1/clients?ip={OTHER_IP}").json()["clients"]
    assert [row["mac"] for row in rows] == [OTHER_MAC]


def test_list_sorts_descending(admin: Admin) -> None:
    admin.grant(MAC, IP, duration=100)
    admin.grant(OTHER_MAC, OTHER_IP, duration=200)
    rows = admin.get("/api/v1/clients?sort=remaining&descending=true").json()
    assert [row["mac"] for row in rows["clients"]] == [OTHER_MAC, MAC]


def test_list_reports_counted_bytes(admin: Admin) -> None:
    admin.grant(MAC, IP)
    assert admin.get("/api/v1/clients").json()["clients"][0]["bytes_up"] == 0
    admin.count_traffic()
    row = admin.get("/api/v1/clients").json()["clients"][0]
    assert row["bytes_up"] == DEVICE_BYTES
    assert row["bytes_down"] == DOWN_BYTES


# Trusted and blocked MACs


def test_trust_lists_mac(admin: Admin) -> None:
    response = admin.put(f"/api/v1/trusted/{MAC}")
    assert response.status_code == 200
    assert response.json()["policy"] == "trusted"
    assert admin.get("/api/v1/trusted").json() == {"macs": [MAC]}
    assert admin.get("/api/v1/blocked").json() == {"macs": []}
    assert admin.enforcer.trusted == {MAC}


def test_untrust_removes_mac(admin: Admin) -> None:
    admin.put(f"/api/v1/trusted/{MAC}")
    assert admin.delete(f"/api/v1/trusted/{MAC}").status_code == 204
    assert admin.get("/api/v1/trusted").json() == {"macs": []}
    assert admin.enforcer.trusted == set()


def test_untrust_of_untrusted_mac_is_404(admin: Admin) -> None:
    response = admin.delete(f"/api/v1/trusted/{MAC}")
    assert response.status_code == 404
    assert error_of(response)[0] == "mac"


def test_block_takes_mac_off_trusted(admin: Admin) -> None:
    admin.put(f"/api/v1/trusted/{MAC}")
    admin.put(f"/api/v1/blocked/{MAC}")
    assert admin.get("/api/v1/trusted").json() == {"macs": []}
    assert admin.enforcer.trusted == set()


def test_block_ends_sessions(admin: Admin) -> None:
    admin.grant(MAC, IP)
    response = admin.put(f"/api/v1/blocked/{MAC}")
    assert [row["mac"] for row in response.json()["ended"]] == [MAC]
    assert admin.enforcer.devices == {}
    assert admin.get("/api/v1/blocked").json() == {"macs": [MAC]}
    assert admin.enforcer.blocked == {MAC}


def test_grant_to_blocked_mac_is_409(admin: Admin) -> None:
    admin.put(f"/api/v1/blocked/{MAC}")
    response = admin.post("/api/v1/clients", {"mac": MAC, "ip": IP})
    assert response.status_code == 409
    assert admin.enforcer.devices == {}


def test_unblock_allows_grant(admin: Admin) -> None:
    admin.put(f"/api/v1/blocked/{MAC}")
    assert admin.delete(f"/api/v1/blocked/{MAC}").status_code == 204
    admin.grant(MAC, IP)


# Users


def test_user_is_added_and_listed(admin: Admin) -> None:
    response = admin.post("/api/v1/users", {"name": "Alice", "password": "s3cret"})
    assert response.status_code == 201
    users = admin.get("/api/v1/users").json()["users"]
    assert [(u["name"], u["max_devices"]) for u in users] == [("alice", None)]
    stored = admin.call(admin.store.user, "alice")
    assert verify_password(stored.password_hash, "s3cret")


def test_duplicate_user_is_409(admin: Admin) -> None:
    admin.post("/api/v1/users", {"name": "alice", "password": "a"})
    response = admin.post("/api/v1/users", {"name": "ALICE", "password": "b"})
    assert response.status_code == 409
    assert error_of(response)[0] == "name"


def test_user_with_empty_password_is_422(admin: Admin) -> None:
    response = admin.post("/api/v1/users", {"name": "alice", "password": ""})
    assert response.status_code == 422
    assert error_of(response)[0] == "password"


def test_password_is_changed(admin: Admin) -> None:
    admin.post("/api/v1/users", {"name": "alice", "password": "old"})
    response = admin.put("/api/v1/users/alice/password", {"password": "new"})
    assert response.status_code == 204
    stored = admin.call(admin.store.user, "alice")
    assert verify_password(stored.password_hash, "new")


def test_password_of_unknown_user_is_404(admin: Admin) -> None:
    response = admin.put("/api/v1/users/nobody/password", {"password": "x"})
    assert response.status_code == 404


def test_user_is_removed(admin: Admin) -> None:
    admin.post("/api/v1/users", {"name": "alice", "password": "a"})
    assert admin.delete("/api/v1/users/alice").status_code == 204
    assert admin.get("/api/v1/users").json() == {"users": []}


def test_remove_unknown_user_is_404(admin: Admin) -> None:
    assert admin.delete("/api/v1/users/nobody").status_code == 404


# Vouchers


def test_vouchers_are_created_with_redeemable_codes(admin: Admin) -> None:
    response = admin.post("/api/v1/vouchers", {"count": 3, "duration": 7200})
    assert response.status_code == 201
    created = response.json()["vouchers"]
    assert len(created) == 3
    for row in created:
        code = normalise_code(row["code"])
        assert code is not None
        voucher = admin.call(admin.store.voucher, code_digest(code))
        assert voucher.id == row["id"]
        assert voucher.duration == 7200


def test_voucher_count_over_limit_is_422(admin: Admin) -> None:
    response = admin.post("/api/v1/vouchers", {"count": 1001, "duration": 60})
    assert response.status_code == 422
    assert error_of(response)[0] == "count"


def test_voucher_is_revoked(admin: Admin) -> None:
    voucher_id = admin.post("/api/v1/vouchers", {"duration": 60}).json()["vouchers"][0][
        "id"
    ]
    assert admin.delete(f"/api/v1/vouchers/{voucher_id}").status_code == 204
    states = [v["state"] for v in admin.get("/api/v1/vouchers").json()["vouchers"]]
    assert states == ["revoked"]


def test_revoke_unknown_voucher_is_404(admin: Admin) -> None:
    assert admin.delete("/api/v1/vouchers/999").status_code == 404


@pytest.mark.parametrize("voucher_id", ["abc", "0", str(2**64)])
def test_invalid_voucher_id_is_422(admin: Admin, voucher_id: str) -> None:
    response = admin.delete(f"/api/v1/vouchers/{voucher_id}")
    assert response.status_code == 422
    assert error_of(response)[0] == "voucher_id"


def test_vouchers_csv_lists_vouchers_without_codes(admin: Admin) -> None:
    code = admin.post("/api/v1/vouchers", {"duration": 60}).json()["vouchers"][0][
        "code"
    ]
    response = admin.get("/api/v1/vouchers.csv")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(row["id"], row["state"]) for row in rows] == [("1", "unused")]
    assert code not in response.text


# Status and history


def test_status_counts_sessions_by_method(admin: Admin) -> None:
    admin.grant(MAC, IP)
    body = admin.get("/api/v1/status").json()
    assert body["sessions"] == {"active": 1, "by_method": {"admin": 1}}
    assert body["table"]["exists"] is True
    assert body["uptime_seconds"] >= 0


def test_status_counts_listed_elements(admin: Admin) -> None:
    admin.grant(MAC, IP)
    admin.count_traffic()
    table = admin.get("/api/v1/status").json()["table"]
    assert table["elements"] == {"allowed4": 1, "allowed6": 0}
    assert table["listed_at"] is not None


def test_history_counts_logins_and_bytes(admin: Admin) -> None:
    admin.grant(MAC, IP)
    admin.count_traffic()
    admin.call(admin.sampler.sample)
    body = admin.get("/api/v1/history?hours=3").json()
    assert body["hours"] == 3
    points = body["points"]
    assert len(points) == 3
    assert points[-1]["logins"] == 1
    assert points[-1]["logins_by_method"] == {"admin": 1}
    assert points[-1]["active_devices"] == 1
    assert points[-1]["forwarded_bytes"] == DEVICE_BYTES + DOWN_BYTES
    assert points[0]["active_devices"] is None


def test_sampler_keeps_no_idle_totals(admin: Admin) -> None:
    admin.grant(MAC, IP)
    admin.grant(OTHER_MAC, OTHER_IP)

    idle = admin.call(admin.sampler.sample)
    idle_totals = dict(admin.sampler.totals)
    admin.count_traffic()
    moving = admin.call(admin.sampler.sample)

    assert idle.forwarded_bytes == 0
    assert idle_totals == {}
    assert moving.forwarded_bytes == 2 * (DEVICE_BYTES + DOWN_BYTES)
    assert len(admin.sampler.totals) == 2


# Audit log


def test_grant_is_audited_with_token_name(
    admin: Admin, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="capport.audit"):
        admin.grant(MAC, IP, duration=600)
    lines = [r.getMessage() for r in caplog.records if r.name == "capport.audit"]
    assert len(lines) == 1
    assert lines[0].startswith(f"token {TOKEN_NAME}: granted {MAC}/{IP}")


def test_audit_never_contains_token_or_password(
    admin: Admin, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        admin.post("/api/v1/users", {"name": "alice", "password": "hunter2-pw"})
        admin.put("/api/v1/users/alice/password", {"password": "hunter3-pw"})
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "changed the password of user alice" in text
    assert admin.token not in text
    assert "hunter2-pw" not in text
    assert "hunter3-pw" not in text


def test_revoke_is_audited(admin: Admin, caplog: pytest.LogCaptureFixture) -> None:
    admin.grant(MAC, IP)
    with caplog.at_level(logging.INFO, logger="capport.audit"):
        admin.delete(f"/api/v1/clients/{MAC}")
    lines = [r.getMessage() for r in caplog.records if r.name == "capport.audit"]
    assert lines == [f"token {TOKEN_NAME}: revoked {MAC} (sessions 1)."]


def test_rejected_change_is_not_audited(
    admin: Admin, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="capport.audit"):
        admin.post("/api/v1/clients", {"mac": "bad", "ip": IP})
        admin.delete(f"/api/v1/clients/{MAC}")
    assert [r for r in caplog.records if r.name == "capport.audit"] == []


def test_reads_are_not_audited(admin: Admin, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="capport.audit"):
        admin.get("/api/v1/clients")
        admin.get("/api/v1/status")
    assert [r for r in caplog.records if r.name == "capport.audit"] == []


# Metrics


def metric_samples(
    admin: Admin,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = admin.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_count_active_sessions(admin: Admin) -> None:
    admin.grant(MAC, IP)
    samples = metric_samples(admin)
    assert samples[("capport_active_sessions", (("method", "admin"),))] == 1
    assert samples[("capport_active_sessions", (("method", "voucher"),))] == 0


def test_metrics_count_logins_by_method(admin: Admin) -> None:
    key = ("capport_logins_total", (("method", "admin"),))
    before = metric_samples(admin).get(key, 0.0)
    admin.grant(MAC, IP)
    admin.grant(OTHER_MAC, OTHER_IP)
    assert metric_samples(admin)[key] == before + 2


def test_metrics_count_forwarded_bytes(admin: Admin) -> None:
    key = ("capport_forwarded_bytes_total", ())
    before = metric_samples(admin)[key]
    admin.grant(MAC, IP)
    admin.count_traffic()
    admin.call(admin.sampler.sample)
    admin.call(admin.sampler.sample)
    assert metric_samples(admin)[key] == before + DEVICE_BYTES + DOWN_BYTES


def test_metrics_expose_histograms(admin: Admin) -> None:
    admin.count_traffic()
    samples = metric_samples(admin)
    assert samples[("capport_accounting_pass_seconds_count", ())] >= 1
    assert ("capport_nftables_transaction_seconds_count", ()) in samples


def test_metrics_have_no_device_labels(admin: Admin) -> None:
    admin.grant(MAC, IP)
    for _, labels in metric_samples(admin):
        for name, value in labels:
            assert name not in ("mac", "ip")
            assert MAC not in value


def test_metrics_expose_responder_counters(admin: Admin) -> None:
    admin.responder.captive_responses = 7
    admin.responder.redirects = 2
    admin.responder.connections_accepted = 9
    admin.responder.open_connections = 3
    samples = metric_samples(admin)
    assert samples[("capport_responder_responses_total", (("kind", "captive"),))] == 7
    probe = ("capport_responder_responses_total", (("kind", "probe_answer"),))
    assert samples[probe] == 2
    accepted = ("capport_responder_connections_total", (("outcome", "accepted"),))
    assert samples[accepted] == 9
    assert samples[("capport_responder_open_connections", ())] == 3


def test_status_reports_responder_counters(admin: Admin) -> None:
    admin.responder.captive_responses = 4
    assert admin.get("/api/v1/status").json()["responder"]["captive_responses"] == 4


# Failures of the gateway


def test_firewall_failure_is_503(
    admin: Admin, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def reject(grants: object) -> None:
        raise EnforcementError("authorising failed: kernel rejected the change")

    monkeypatch.setattr(admin.enforcer, "grant", reject)
    with caplog.at_level(logging.INFO):
        response = admin.post("/api/v1/clients", {"mac": MAC, "ip": IP})
    assert response.status_code == 503
    assert "kernel rejected the change" in error_of(response)[1]
    assert admin.call(admin.store.active_sessions) == []
    assert any(r.name == "capport.admin" for r in caplog.records)
    assert not any(r.name == "capport.audit" for r in caplog.records)


def test_client_lists_learned_ipv6(admin: Admin) -> None:
    admin.grant(MAC, IP)
    admin.call(admin.gateway.learn_ipv6, MAC, IPv6Address("2001:db8:1::11"))
    row = admin.get(f"/api/v1/clients/{MAC}").json()["clients"][0]
    assert row["learned_ipv6"] == ["2001:db8:1::11"]


def test_client_bytes_include_learned_ipv6(admin: Admin) -> None:
    admin.grant(MAC, IP)
    admin.call(admin.gateway.learn_ipv6, MAC, IPv6Address("2001:db8:1::11"))
    admin.count_traffic()
    row = admin.get(f"/api/v1/clients/{MAC}").json()["clients"][0]
    assert row["bytes_up"] == 2 * DEVICE_BYTES
    assert row["bytes_down"] == 2 * DOWN_BYTES


# Grants of addresses that cannot be a device


@pytest.mark.parametrize(
    "mac",
    ["ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00", "01:00:5e:00:00:01"],
)
def test_grant_to_group_or_zero_mac_is_422(admin: Admin, mac: str) -> None:
    response = admin.post("/api/v1/clients", {"mac": mac, "ip": IP})
    assert response.status_code == 422
    field, message = error_of(response)
    assert field == "mac"
    assert mac in message
    assert admin.enforcer.devices == {}


@pytest.mark.parametrize(
    "ip", ["192.0.2.0", "192.0.2.255", "192.0.2.1", "127.0.0.1", "10.0.0.1"]
)
def test_grant_to_non_device_ip_is_422(admin: Admin, ip: str) -> None:
    response = admin.post("/api/v1/clients", {"mac": MAC, "ip": ip})
    assert response.status_code == 422
    field, message = error_of(response)
    assert field == "ip"
    assert ip in message
    assert admin.enforcer.devices == {}


def test_rejected_grant_stores_no_session(admin: Admin) -> None:
    admin.post("/api/v1/clients", {"mac": MAC, "ip": "192.0.2.255"})
    assert admin.call(admin.store.active_sessions) == []
