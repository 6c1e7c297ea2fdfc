"""String formats kube-apiserver checks in CRD schemas (kube-openapi's strfmt default registry)."""

from __future__ import annotations

import datetime
import ipaddress
import re
from collections.abc import Callable
from urllib.parse import urlsplit

_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I)
_UUID3 = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I)
_UUID4 = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$", re.I)
_UUID5 = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$", re.I)
_BASE64 = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$")
_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})?$"
)
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_DURATION = re.compile(
    r"^\s*[-+]?(?:\s*\d+(?:\.\d+)?\s*(?:ns|us|µs|ms|s|m|h|d|w|"
    r"nanoseconds?|microseconds?|milliseconds?|seconds?|sec|minutes?|mins?|hours?|hr|days?|weeks?|wk))+\s*$"
)
_HOST_LABEL = re.compile(r"^[^\W_](?:[\w-]{0,61}[^\W_])?$", re.UNICODE)
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
_MAC = re.compile(r"^(?:[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5,19}|[0-9A-Fa-f]{4}(?:\.[0-9A-Fa-f]{4}){2,9})$")
_HEX_COLOR = re.compile(r"^#?(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_BYTE = r"\s*(?:0|[1-9]\d?|1\d\d|2[0-4]\d|25[0-5])\s*"
_RGB_COLOR = re.compile(rf"^rgb\({_BYTE},{_BYTE},{_BYTE}\)$")


def _date_time(value: str) -> bool:
    m = _DATE_TIME.match(value)
    if not m:
        return False
    try:
        datetime.datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), min(int(m[6]), 59))
    except ValueError:
        return False
    return True


def _date(value: str) -> bool:
    m = _DATE.match(value)
    if not m:
        return False
    try:
        datetime.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return False
    return True


def _ip(version: int) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        try:
            return ipaddress.ip_address(value).version == version
        except ValueError:
            return False

    return check


def _cidr(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return "/" in value


def _hostname(value: str) -> bool:
    if not value or len(value) > 255:
        return False
    return all(_HOST_LABEL.match(label) for label in value.split("."))


def _uri(value: str) -> bool:
    # Go's url.ParseRequestURI: an absolute URI or an absolute path.
    if value.startswith("/"):
        return True
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return bool(parts.scheme) and " " not in value


FORMATS: dict[str, Callable[[str], bool]] = {
    "date-time": _date_time,
    "datetime": _date_time,
    "date": _date,
    "byte": lambda v: bool(_BASE64.match(v)),
    "uuid": lambda v: bool(_UUID.match(v)),
    "uuid3": lambda v: bool(_UUID3.match(v)),
    "uuid4": lambda v: bool(_UUID4.match(v)),
    "uuid5": lambda v: bool(_UUID5.match(v)),
    "ipv4": _ip(4),
    "ipv6": _ip(6),
    "cidr": _cidr,
    "mac": lambda v: bool(_MAC.match(v)),
    "hostname": _hostname,
    "email": lambda v: bool(_EMAIL.match(v)),
    "uri": _uri,
    "duration": lambda v: bool(_DURATION.match(v)),
    "hexcolor": lambda v: bool(_HEX_COLOR.match(v)),
    "rgbcolor": lambda v: bool(_RGB_COLOR.match(v)),
    "password": lambda v: True,
}


def format_ok(fmt: str, value: str) -> bool:
    """Whether `value` satisfies `fmt`; formats kube does not check (int32, float, ...) always pass."""
    check = FORMATS.get(fmt)
    return check is None or check(value)
