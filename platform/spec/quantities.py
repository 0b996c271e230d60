"""Kubernetes resource quantities ("250m", "1.5", "512Mi", "1G"): parse, compare, format.

Only what plumbline needs: CPU in cores and memory in bytes, as exact Decimals so that a
profile limit of 2 CPUs and a request of "2000m" compare equal.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_QUANTITY = re.compile(r"^(?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?P<suffix>[a-zA-Z]*)$")
_BINARY: dict[str, int] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_DECIMAL: dict[str, Decimal | int] = {
    "": 1,
    "m": Decimal("0.001"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
MIB = 2**20


class QuantityError(ValueError):
    pass


def parse_quantity(text: str | int | float) -> Decimal:
    """A Kubernetes quantity as a Decimal in base units (cores, bytes)."""
    raw = str(text).strip()
    m = _QUANTITY.match(raw)
    if not m:
        raise QuantityError(f"{text!r} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 1Gi)")
    suffix = m.group("suffix")
    factor = _BINARY.get(suffix) or _DECIMAL.get(suffix)
    if factor is None:
        raise QuantityError(f"{text!r}: unknown unit {suffix!r} (use m, k, M, G, Ki, Mi, Gi, ...)")
    try:
        return Decimal(m.group("number")) * Decimal(factor)
    except InvalidOperation as e:  # pragma: no cover - the regex admits only numbers
        raise QuantityError(f"{text!r}: {e}") from None


def parse_cpu(text: str | int | float) -> Decimal:
    value = parse_quantity(text)
    if value <= 0:
        raise QuantityError(f"{text!r}: CPU must be more than 0")
    if value != value.quantize(Decimal("0.001")):
        raise QuantityError(f"{text!r}: CPU is counted in millicores (at most 3 decimals)")
    return value


def parse_memory(text: str | int | float) -> Decimal:
    value = parse_quantity(text)
    if value < MIB:
        raise QuantityError(f"{text!r}: memory must be at least 1Mi (write units: 512Mi, 1Gi)")
    return value


def format_cpu(cores: Decimal) -> str:
    """Whole cores as "2", anything else in millicores ("1500m")."""
    milli = int((cores * 1000).to_integral_value(rounding="ROUND_FLOOR"))
    milli = max(milli, 1)
    return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"


def format_memory(size: Decimal) -> str:
    """Bytes as whole Gi when exact, else whole Mi (rounded down, at least 1Mi)."""
    mib = max(int(size // MIB), 1)
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"
