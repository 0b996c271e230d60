"""Kubernetes quantities: what the profiles compare and what the manifests carry."""

from decimal import Decimal

import pytest

from plumbline.platform.spec.quantities import (
    QuantityError,
    format_cpu,
    format_memory,
    parse_cpu,
    parse_memory,
)


def test_platform_quantities_parse_and_compare():
    assert parse_cpu("2000m") == parse_cpu("2") == parse_cpu(2) == Decimal(2)
    assert parse_cpu("0.5") == parse_cpu("500m")
    assert parse_memory("1Gi") == parse_memory("1024Mi") == 2**30
    assert parse_memory("1G") == 10**9 < parse_memory("1Gi")


@pytest.mark.parametrize("bad", ["lots", "1.5.2", "-1", "2Xi", "0", "0.0005"])
def test_platform_quantities_refuse_nonsense_cpu(bad):
    with pytest.raises(QuantityError):
        parse_cpu(bad)


def test_platform_quantities_refuse_memory_without_units():
    with pytest.raises(QuantityError, match="write units"):
        parse_memory("512")  # 512 bytes: surely meant 512Mi


def test_platform_quantities_format_for_manifests():
    assert [format_cpu(Decimal(x)) for x in ("2", "0.5", "1.25", "0.0001")] == [
        "2",
        "500m",
        "1250m",
        "1m",
    ]
    assert [format_memory(Decimal(x)) for x in (2**30, 3 * 2**29, 2**20 + 5)] == [
        "1Gi",
        "1536Mi",
        "1Mi",
    ]
