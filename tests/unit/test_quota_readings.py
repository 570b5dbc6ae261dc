"""The quota part of each device's reading of the kernel's counters."""

from capport.enforce import limits
from capport.enforce.base import NO_QUOTAS_USED, DeviceUsage, Traffic
from capport.models import Device

A = Device.parse("02:00:00:00:00:11", "192.0.2.11")
B = Device.parse("02:00:00:00:00:12", "192.0.2.12")


def test_no_quota_objects_share_empty_mapping() -> None:
    assert limits.quotas_used(A, {}) is NO_QUOTAS_USED


def test_other_device_quotas_share_empty_mapping() -> None:
    quotas = {limits.object_name("quota-down", B): 300}

    assert limits.quotas_used(A, quotas) is NO_QUOTAS_USED


def test_device_quota_objects_read_by_direction() -> None:
    quotas = {
        limits.object_name("quota-down", A): 300,
        limits.object_name("quota-total", A): 500,
        limits.object_name("quota-up", B): 7,
    }

    assert limits.quotas_used(A, quotas) == {"down": 300, "total": 500}


def test_device_usage_default_is_shared() -> None:
    assert DeviceUsage(Traffic()).quota_used is NO_QUOTAS_USED
