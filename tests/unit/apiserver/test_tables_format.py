"""Ages (HumanDuration), quantities and Accept-header negotiation for Tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pycdi.cluster.apiserver.tables import wants_table
from pycdi.cluster.apiserver.tables.age import age, created_at, human_duration, parse_time
from pycdi.cluster.apiserver.tables.quantity import canonical

NOW = datetime(2025, 1, 10, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("delta", "text"), [
    (timedelta(seconds=0), "0s"), (timedelta(seconds=45), "45s"), (timedelta(seconds=119), "119s"),
    (timedelta(minutes=2), "2m"), (timedelta(minutes=3, seconds=20), "3m20s"), (timedelta(minutes=10), "10m"),
    (timedelta(minutes=179), "179m"), (timedelta(hours=3), "3h"), (timedelta(hours=3, minutes=10), "3h10m"),
    (timedelta(hours=8, minutes=30), "8h"), (timedelta(hours=47), "47h"), (timedelta(days=2), "2d"),
    (timedelta(days=5, hours=3), "5d3h"), (timedelta(days=8, hours=3), "8d"), (timedelta(days=729), "729d"),
    (timedelta(days=730), "2y"), (timedelta(days=740), "2y10d"), (timedelta(days=365 * 9), "9y"),
    (timedelta(seconds=-1.5), "0s"), (timedelta(seconds=-3), "<invalid>"),
])
def test_human_duration(delta: timedelta, text: str) -> None:
    assert human_duration(delta) == text


def test_age_and_timestamps() -> None:
    assert age("2025-01-10T11:59:15Z", NOW) == "45s"
    assert age("2025-01-10T13:59:15+02:00", NOW) == "45s"
    assert age("2025-01-10T11:59:14.999999Z", NOW) == "45s"
    assert age(None, NOW) == "<unknown>"
    assert age("", NOW) == "<unknown>"
    assert age("2025-01-10", NOW) == "<unknown>"
    assert age("0001-01-01T00:00:00Z", NOW) == "<unknown>"
    assert parse_time("2025-01-10T11:59:15.5Z") == datetime(2025, 1, 10, 11, 59, 15, 500000, tzinfo=UTC)
    assert created_at("2025-01-10T11:59:15.5Z") == "2025-01-10T11:59:15Z"


@pytest.mark.parametrize(("raw", "text"), [
    ("1Gi", "1Gi"), ("1024Mi", "1Gi"), ("1536Mi", "1536Mi"), ("0.5Gi", "512Mi"), ("1000M", "1G"),
    ("1500M", "1500M"), ("5368709120", "5368709120"), ("10000000000", "10G"), ("0.5", "500m"),
    ("100m", "100m"), ("1e9", "1e9"), ("512", "512"), ("0", "0"), ("junk", "junk"),
    (1073741824, "1073741824"),
])
def test_quantity(raw: object, text: str) -> None:
    assert canonical(raw) == text


KUBECTL_GET = ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;"
               "g=meta.k8s.io,application/json")


@pytest.mark.parametrize(("accept", "version"), [
    (KUBECTL_GET, "v1"),
    ("application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json", "v1beta1"),
    ("application/json;as=Table;v=v1;g=meta.k8s.io;q=0.5,application/json;as=Table;v=v1beta1;g=meta.k8s.io",
     "v1beta1"),
    ("application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,"
     "application/json;as=Table;v=v1;g=meta.k8s.io,application/json", "v1"),
    ("application/json", None),
    ("application/json, */*", None),
    ("*/*", None),
    ("", None),
    (None, None),
    ("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json", None),
    ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json", None),
    ("application/json;as=Table;v=v2;g=meta.k8s.io,application/json", None),
    ("application/json;as=Table;v=v1;g=other.io", None),
    ("application/json,application/json;as=Table;v=v1;g=meta.k8s.io", None),
    ("application/json; as=Table; v=v1; g=meta.k8s.io", "v1"),
])
def test_wants_table(accept: str | None, version: str | None) -> None:
    assert wants_table(accept) == version
