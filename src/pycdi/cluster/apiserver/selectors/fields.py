"""Field selectors: the `fieldSelector` query syntax and the field labels each resource supports."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import SelectorError

# ---- field selectors --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldTerm:
    field: str
    value: str
    negated: bool = False


@dataclass(frozen=True)
class FieldSelector:
    terms: tuple[FieldTerm, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not self.terms

    def matches(self, obj: Mapping[str, Any]) -> bool:
        for term in self.terms:
            have = field_value(obj, term.field)
            if (have == term.value) == term.negated:
                return False
        return True

    def value_for(self, name: str) -> str | None:
        """The value `name` must equal (a `=`/`==` term), so a store can narrow its query."""
        for term in self.terms:
            if term.field == name and not term.negated:
                return term.value
        return None


def _split_terms(text: str) -> list[str]:
    if not text:
        return []
    terms, start, escaped = [], 0, False
    for i, c in enumerate(text):
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _unescape(value: str) -> str:
    if not any(c in value for c in "\\,="):
        return value
    out: list[str] = []
    escaped = False
    for c in value:
        if escaped:
            if c not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{c}")
            out.append(c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif c in ",=":
            # Go prints the rune with %v, i.e. as its code point number.
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(c)}")
        else:
            out.append(c)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def escape_field_value(value: str) -> str:
    """Escape `\\`, `,` and `=` in a value for use in a field selector."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def parse_field_selector(text: str, supported: Collection[str]) -> FieldSelector:
    """Parse `a=b,c!=d` (values escaped with backslashes) and check each field is selectable."""
    terms: list[FieldTerm] = []
    for part in sorted(_split_terms(text)):
        if not part:
            continue
        found = None
        for i in range(len(part)):
            for op in ("!=", "==", "="):
                if part.startswith(op, i):
                    found = (part[:i], op, part[i + len(op) :])
                    break
            if found:
                break
        if found is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        lhs, op, rhs = found
        terms.append(FieldTerm(lhs, _unescape(rhs), op == "!="))
    for term in terms:
        if term.field not in supported:
            raise SelectorError(f"field label not supported: {term.field}")
    return FieldSelector(tuple(terms))


# events.k8s.io/v1 Events are stored as core Events; their selectable fields keep the core names.
_EVENTS_V1_FIELDS = {
    "involvedObject": "regarding",
    "source": "deprecatedSource.component",
    "reportingComponent": "reportingController",
}
# Booleans kube always renders, absent meaning false.
_BOOL_FIELDS = {("Node", "spec.unschedulable"), ("Pod", "spec.hostNetwork")}


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The value at a dotted path as a field selector compares it; missing gives ""."""
    kind = obj.get("kind")
    if kind == "Event":
        if str(obj.get("apiVersion", "")).startswith("events.k8s.io/"):
            head, _, rest = path.partition(".")
            if head in _EVENTS_V1_FIELDS:
                path = _EVENTS_V1_FIELDS[head] + ("." + rest if rest else "")
        elif path == "source":
            path = "source.component"
    if (kind, path) in _BOOL_FIELDS:
        return "true" if _lookup(obj, path) is True else "false"
    cur = _lookup(obj, path)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if isinstance(cur, (dict, list)):
        return ""
    return str(cur)


def _lookup(obj: Mapping[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


_COMMON = frozenset({"metadata.name", "metadata.namespace"})
_EVENT_FIELDS = frozenset(
    {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    }
)
_EXTRA: dict[tuple[str, str], frozenset[str]] = {
    ("", "events"): _EVENT_FIELDS,
    # events.k8s.io serves the same storage; kube converts its field labels to the core ones.
    ("events.k8s.io", "events"): _EVENT_FIELDS,
    ("", "pods"): frozenset(
        {
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        }
    ),
    ("", "secrets"): frozenset({"type"}),
    ("", "namespaces"): frozenset({"status.phase"}),
    ("", "nodes"): frozenset({"spec.unschedulable"}),
    ("", "replicationcontrollers"): frozenset({"status.replicas"}),
    ("", "persistentvolumeclaims"): frozenset(),
    ("apps", "replicasets"): frozenset({"status.replicas"}),
    ("batch", "jobs"): frozenset({"status.successful"}),
    ("certificates.k8s.io", "certificatesigningrequests"): frozenset({"spec.signerName"}),
}


def supported_fields(group: str, plural: str) -> frozenset[str]:
    """The field labels kube-apiserver accepts in a fieldSelector for this resource."""
    return _COMMON | _EXTRA.get((group, plural), frozenset())


def field_selector_values(obj: Mapping[str, Any], group: str, plural: str) -> dict[str, str]:
    """Every selectable field of an object with its value (what a watch cache indexes)."""
    return {f: field_value(obj, f) for f in supported_fields(group, plural)}
