"""JSON patch (RFC 6902) with JSON-pointer (RFC 6901) paths, answering errors the way kube-apiserver does."""

from __future__ import annotations

import copy
from typing import Any

from pycdi.cluster.apiserver.patching.jsonvalue import json_equal
from pycdi.cluster.apiserver.patching.patch_errors import PatchError, bad_request, unprocessable

MAX_OPERATIONS = 10000  # kube-apiserver's maxJSONPatchOperations

_MISSING: Any = object()


def json_patch(target: dict[str, Any], ops: object) -> dict[str, Any]:
    """Apply the operations in order to a copy of `target`; all-or-nothing.

    Codes follow kube-apiserver: a body that is not a list of objects is 400 (it fails to
    decode), more than 10000 operations is 413, and any operation that cannot be carried out
    (failed `test`, missing path, unknown op, bad pointer) is 422 with the generic message.
    """
    if not isinstance(ops, list):
        raise bad_request(f"json: cannot unmarshal {_go_kind(ops)} into Go value of type jsonpatch.Patch")
    for op in ops:
        if not isinstance(op, dict):
            raise bad_request(
                f"json: cannot unmarshal {_go_kind(op)} into Go value of type jsonpatch.Operation")
    if len(ops) > MAX_OPERATIONS:
        raise PatchError(413, "Request entity too large: The allowed maximum operations in a JSON patch "
                              f"is {MAX_OPERATIONS}, got {len(ops)}")
    doc: Any = copy.deepcopy(target)
    for op in ops:
        doc = _apply_one(doc, op)
    if not isinstance(doc, dict):
        raise unprocessable("the patched document is not a JSON object")
    return doc


def _go_kind(value: object) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null"


def parse_pointer(pointer: object) -> list[str]:
    """Split an RFC 6901 pointer into unescaped tokens (`~1` is `/`, `~0` is `~`)."""
    if not isinstance(pointer, str):
        raise unprocessable(f"invalid JSON pointer {pointer!r}: not a string")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise unprocessable(f"invalid JSON pointer {pointer!r}: must start with '/'")
    tokens = []
    for raw in pointer[1:].split("/"):
        # Validate escapes: `~` may only be followed by 0 or 1.
        i = raw.find("~")
        while i != -1:
            if i + 1 >= len(raw) or raw[i + 1] not in "01":
                raise unprocessable(f"invalid JSON pointer {pointer!r}: bad escape")
            i = raw.find("~", i + 2)
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tokens


def _index(token: str, length: int, pointer: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return length
    if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
        raise unprocessable(f"invalid array index {token!r} in {pointer}")
    idx = int(token)
    if idx > length or (idx == length and not allow_end):
        raise unprocessable(f"array index {idx} out of bounds in {pointer}")
    return idx


def _parent(doc: Any, tokens: list[str], pointer: str) -> Any:
    """The container that holds the last token's target."""
    node = doc
    for token in tokens[:-1]:
        node = _child(node, token, pointer)
        if node is _MISSING:
            raise unprocessable(f"doc is missing path: {pointer}: missing value")
    return node


def _child(node: Any, token: str, pointer: str) -> Any:
    if isinstance(node, dict):
        return node.get(token, _MISSING)
    if isinstance(node, list):
        if token == "-" or not token.isdigit() or (len(token) > 1 and token[0] == "0"):
            return _MISSING
        idx = int(token)
        return node[idx] if idx < len(node) else _MISSING
    return _MISSING


def get(doc: Any, pointer: str) -> Any:
    """The value at `pointer`, or the module's missing sentinel."""
    node = doc
    for token in parse_pointer(pointer):
        node = _child(node, token, pointer)
        if node is _MISSING:
            return _MISSING
    return node


def _add(doc: Any, pointer: str, value: Any) -> Any:
    tokens = parse_pointer(pointer)
    if not tokens:
        return value
    parent = _parent(doc, tokens, pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(last, len(parent), pointer, allow_end=True), value)
    else:
        raise unprocessable(f"add operation does not apply: doc is missing path: {pointer}")
    return doc


def _remove(doc: Any, pointer: str, op: str = "remove") -> tuple[Any, Any]:
    tokens = parse_pointer(pointer)
    if not tokens:
        raise unprocessable(f"{op} operation does not apply: cannot remove the whole document")
    parent = _parent(doc, tokens, pointer)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise unprocessable(f"error in {op} for path: '{pointer}': "
                                f"Unable to remove nonexistent key: {last}: missing value")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(last, len(parent), pointer, allow_end=False))
    raise unprocessable(f"{op} operation does not apply: doc is missing path: {pointer}")


def _replace(doc: Any, pointer: str, value: Any) -> Any:
    tokens = parse_pointer(pointer)
    if not tokens:
        return value
    parent = _parent(doc, tokens, pointer)
    last = tokens[-1]
    if isinstance(parent, dict) and last in parent:
        parent[last] = value
    elif isinstance(parent, list):
        parent[_index(last, len(parent), pointer, allow_end=False)] = value
    else:
        raise unprocessable(f"replace operation does not apply: doc is missing key: {pointer}: missing value")
    return doc


def _field(op: dict[str, Any], name: str) -> Any:
    if name not in op:
        raise unprocessable(f"operation missing {name} field: {op.get('op')}")
    return op[name]


def _apply_one(doc: Any, op: dict[str, Any]) -> Any:
    kind = op.get("op")
    path = _field(op, "path")
    if not isinstance(path, str):
        raise unprocessable(f"operation path is not a string: {path!r}")
    if kind == "add":
        return _add(doc, path, copy.deepcopy(_field(op, "value")))
    if kind == "remove":
        return _remove(doc, path)[0]
    if kind == "replace":
        return _replace(doc, path, copy.deepcopy(_field(op, "value")))
    if kind in ("move", "copy"):
        source = _field(op, "from")
        if not isinstance(source, str):
            raise unprocessable(f"operation from is not a string: {source!r}")
        if kind == "move":
            if source == path:
                return doc
            if path.startswith(source + "/"):
                raise unprocessable(f"move operation does not apply: {path} is a child of {source}")
            doc, value = _remove(doc, source, "move")
        else:
            value = get(doc, source)
            if value is _MISSING:
                raise unprocessable(f"copy operation does not apply: doc is missing from path: {source}")
            value = copy.deepcopy(value)
        return _add(doc, path, value)
    if kind == "test":
        expected = _field(op, "value")
        actual = get(doc, path)
        if actual is _MISSING:
            actual = None
        if not json_equal(actual, expected):
            raise unprocessable(f"testing value {path} failed: test failed")
        return doc
    raise unprocessable(f"Unexpected kind: {kind}")
