"""Custom resource tables: additionalPrinterColumns evaluated with the JSONPath subset kube uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from pycdi.cluster.apiserver.resources import ResourceInfo
from pycdi.cluster.apiserver.tables import render_table
from pycdi.cluster.apiserver.tables.custom import go_float
from pycdi.cluster.apiserver.tables.jsonpath import JSONPathError, compile_path

NOW = datetime(2025, 1, 10, 12, 0, 0, tzinfo=UTC)

# The DataVolume printer columns of CDI's v1beta1 CRD.
DV_COLUMNS = (
    {"name": "Phase", "type": "string", "description": "The phase the data volume is in",
     "jsonPath": ".status.phase"},
    {"name": "Progress", "type": "string", "description": "Transfer progress in percentage if known, N/A "
     "otherwise", "jsonPath": ".status.progress"},
    {"name": "Restarts", "type": "integer", "description": "The number of times the transfer has been "
     "restarted.", "jsonPath": ".status.restartCount"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
)

DVS = ResourceInfo(group="cdi.kubevirt.io", version="v1beta1", plural="datavolumes", kind="DataVolume",
                   namespaced=True, custom=True, printer_columns=DV_COLUMNS)


def dv(status: dict[str, Any] | None, created: str | None = "2025-01-10T11:56:40Z") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "disk", "namespace": "default"}
    if created is not None:
        meta["creationTimestamp"] = created
    obj: dict[str, Any] = {"apiVersion": "cdi.kubevirt.io/v1beta1", "kind": "DataVolume", "metadata": meta,
                           "spec": {"source": {"http": {"url": "http://example/disk.img"}}}}
    if status is not None:
        obj["status"] = status
    return obj


def test_datavolume_columns() -> None:
    table = render_table(DVS, [], now=NOW)
    assert [(c["name"], c["type"], c["format"], c["priority"]) for c in table["columnDefinitions"]] == [
        ("Name", "string", "name", 0), ("Phase", "string", "", 0), ("Progress", "string", "", 0),
        ("Restarts", "integer", "", 0), ("Age", "date", "", 0)]
    assert table["columnDefinitions"][1]["description"] == "The phase the data volume is in"
    # No description given: kube describes the column by its path.
    assert table["columnDefinitions"][4]["description"] == \
        "Custom resource definition column (in JSONPath format): .metadata.creationTimestamp"


def test_datavolume_rows() -> None:
    table = render_table(DVS, [dv({"phase": "ImportInProgress", "progress": "45.10%", "restartCount": 2}),
                               dv(None, created=None)], now=NOW)
    assert table["rows"][0]["cells"] == ["disk", "ImportInProgress", "45.10%", 2, "3m20s"]
    # Missing values are null cells (kubectl prints <none>); a missing date is null too.
    assert table["rows"][1]["cells"] == ["disk", None, None, None, None]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


@pytest.mark.parametrize(("column_type", "value", "cell"), [
    ("integer", 3, 3), ("integer", 3.9, 3), ("integer", "3", None), ("integer", True, None),
    ("number", 2, 2.0), ("number", 2.5, 2.5), ("number", "x", None),
    ("boolean", True, True), ("boolean", "true", None),
    ("date", "2025-01-10T11:59:15Z", "45s"), ("date", "yesterday", "<invalid>"), ("date", 5, None),
    ("date", "0001-01-01T00:00:00Z", "<unknown>"),
    ("string", "Ready", "Ready"), ("string", 7, "7"), ("string", 1.5, "1.5"), ("string", 1e7, "1e+07"),
    ("string", False, "false"), ("string", {"b": 1, "a": [1, 2]}, '{"a":[1,2],"b":1}'),
    ("string", [1, 2, 3], "[1,2,3]"), ("string", None, "<no value>"),
])
def test_typed_cells(column_type: str, value: Any, cell: Any) -> None:
    info = ResourceInfo(group="g", version="v1", plural="things", kind="Thing", namespaced=True, custom=True,
                        printer_columns=({"name": "V", "type": column_type, "jsonPath": ".spec.v"},))
    obj = {"metadata": {"name": "t"}, "spec": {"v": value}}
    assert render_table(info, [obj], now=NOW)["rows"][0]["cells"] == ["t", cell]


def test_crd_without_columns_prints_age() -> None:
    info = ResourceInfo(group="g", version="v1", plural="things", kind="Thing", namespaced=True, custom=True)
    table = render_table(info, [{"metadata": {"name": "t", "creationTimestamp": "2023-01-01T00:00:00Z"}}],
                         now=NOW)
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [
        ("Name", "string"), ("Age", "date")]
    assert table["rows"][0]["cells"] == ["t", "2y10d"]


def test_priority_and_format_carried() -> None:
    info = ResourceInfo(group="g", version="v1", plural="things", kind="Thing", namespaced=True, custom=True,
                        printer_columns=({"name": "URL", "type": "string", "format": "uri", "priority": 1,
                                          "jsonPath": ".spec.source.http.url"},))
    col = render_table(info, [], now=NOW)["columnDefinitions"][1]
    assert (col["format"], col["priority"]) == ("uri", 1)


DOC = {
    "metadata": {"name": "x", "creationTimestamp": "2025-01-01T00:00:00Z",
                 "annotations": {"cdi.kubevirt.io/storage.pod.phase": "Running"}},
    "spec": {"source": {"http": {"url": "http://h/d.img"}}, "list": [{"x": 1}, {"x": 2}, {"y": 3}]},
    "status": {"phase": "Succeeded", "conditions": [
        {"type": "Bound", "status": "True"}, {"type": "Ready", "status": "False", "reason": "NotYet"},
        {"type": "Running", "status": "False"}]},
    "items": [{"name": "a", "n": 1}, {"name": "b", "n": 5}, {"name": "c", "n": 9}],
}


@pytest.mark.parametrize(("path", "found"), [
    (".status.phase", ["Succeeded"]),
    (".spec.source.http.url", ["http://h/d.img"]),
    ('.status.conditions[?(@.type=="Ready")].status', ["False"]),
    (".status.conditions[?(@.type=='Ready')].reason", ["NotYet"]),
    ('.status.conditions[?(@.type!="Ready")].type', ["Bound", "Running"]),
    (".status.conditions[?(@.reason)].type", ["Ready"]),
    (".metadata.creationTimestamp", ["2025-01-01T00:00:00Z"]),
    (".spec.list[0].x", [1]),
    (".spec.list[-1].y", [3]),
    (".spec.list[*].x", [1, 2]),
    (".spec.list[5].x", []),
    (".spec.list[0:2].x", [1, 2]),
    (".items[*].name", ["a", "b", "c"]),
    (".items[?(@.n > 4)].name", ["b", "c"]),
    (".items[?(@.n <= 5)].name", ["a", "b"]),
    (".items[0,2].name", ["a", "c"]),
    (r".metadata.annotations.cdi\.kubevirt\.io/storage\.pod\.phase", ["Running"]),
    (".metadata['annotations']['cdi.kubevirt.io/storage.pod.phase']", ["Running"]),
    ("{.status.phase}", ["Succeeded"]),
    ("$.status.phase", ["Succeeded"]),
    (".status.missing.deeper", []),
    (".status.phase.deeper", []),
    ("..reason", ["NotYet"]),
    (".metadata.annotations.*", ["Running"]),
])
def test_jsonpath(path: str, found: list[Any]) -> None:
    assert compile_path(path).find(DOC) == found


def test_jsonpath_rejects_garbage() -> None:
    with pytest.raises(JSONPathError):
        compile_path(".spec.list[0")
    with pytest.raises(JSONPathError):
        compile_path(".spec.list[a]")


def test_wildcard_column_keeps_first_value() -> None:
    # kube's CRD convertor keeps results[0][0]: the first match only, not a joined list.
    info = ResourceInfo(group="g", version="v1", plural="things", kind="Thing", namespaced=True, custom=True,
                        printer_columns=({"name": "Names", "type": "string", "jsonPath": ".items[*].name"},
                                         {"name": "Ready", "type": "string",
                                          "jsonPath": '.status.conditions[?(@.type=="Ready")].status'}))
    assert render_table(info, [DOC], now=NOW)["rows"][0]["cells"] == ["x", "a", "False"]


@pytest.mark.parametrize(("value", "text"), [
    (1.5, "1.5"), (100000.0, "100000"), (1e6, "1e+06"), (123456789.0, "1.23456789e+08"), (0.0001, "0.0001"),
    (0.00001, "1e-05"), (-2.25, "-2.25"), (3.0, "3"), (0.0, "0"),
])
def test_go_float(value: float, text: str) -> None:
    assert go_float(value) == text
