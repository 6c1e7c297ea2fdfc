"""The subset of Kubernetes JSONPath that CRD additionalPrinterColumns use, over plain JSON values."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class JSONPathError(ValueError):
    """The expression does not parse."""


@dataclass(frozen=True)
class _Field:
    name: str  # "*" means every value of a map


@dataclass(frozen=True)
class _Recursive:
    pass


@dataclass(frozen=True)
class _Index:
    start: int | None
    stop: int | None
    step: int | None
    single: bool  # `[2]` rather than a slice `[0:2]` / `[*]`


@dataclass(frozen=True)
class _Union:
    keys: tuple[int | str, ...]


@dataclass(frozen=True)
class _Filter:
    left: tuple[Any, ...]
    op: str  # ==, !=, <, >, <=, >=, or "exists"
    right: Any  # a literal, or a tuple of steps for an @-relative path


_MISSING = object()
_OPERATORS = ("==", "!=", "<=", ">=", "<", ">")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos:self.pos + n]

    def steps(self, stop: str = "") -> tuple[Any, ...]:
        out: list[Any] = []
        while self.pos < len(self.text) and self.peek() not in stop:
            c = self.peek()
            if self.peek(2) == "..":
                self.pos += 1
                out.append(_Recursive())
            elif c == ".":
                self.pos += 1
                out.append(_Field(self.name()))
            elif c == "[":
                out.append(self.bracket())
            elif c in "$@" and not out:
                self.pos += 1
            elif c.isspace():
                self.pos += 1
            else:
                raise JSONPathError(f"unrecognized character in action: {c!r} at {self.pos}")
        return tuple(out)

    def name(self) -> str:
        """A field name; `\\.` escapes a dot so annotation keys such as `cdi\\.kubevirt\\.io/x` work."""
        chars: list[str] = []
        while self.pos < len(self.text):
            c = self.peek()
            if c == "\\" and self.pos + 1 < len(self.text):
                chars.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if c in ".[]()=!<>, \t" or c.isspace():
                break
            chars.append(c)
            self.pos += 1
        return "".join(chars)

    def bracket(self) -> Any:
        end = self._matching_bracket()
        body = self.text[self.pos + 1:end].strip()
        self.pos = end + 1
        if body.startswith("?"):
            return self.filter(body[1:].strip())
        if body == "*":
            return _Index(None, None, None, False)
        if ":" in body:
            parts = [p.strip() for p in body.split(":")]
            if len(parts) > 3:
                raise JSONPathError(f"invalid array index {body}")
            nums = [int(p) if p else None for p in parts] + [None] * (3 - len(parts))
            return _Index(nums[0], nums[1], nums[2], False)
        keys: list[int | str] = []
        for part in _split_top(body, ","):
            part = part.strip()
            if len(part) >= 2 and part[0] == part[-1] and part[0] in "'\"":
                keys.append(part[1:-1])
            else:
                try:
                    keys.append(int(part))
                except ValueError as exc:
                    raise JSONPathError(f"invalid array index {part}") from exc
        if len(keys) == 1 and isinstance(keys[0], int):
            return _Index(keys[0], None, None, True)
        return _Union(tuple(keys))

    def _matching_bracket(self) -> int:
        depth, quote = 0, ""
        for i in range(self.pos, len(self.text)):
            c = self.text[i]
            if quote:
                quote = "" if c == quote else quote
            elif c in "'\"":
                quote = c
            elif c == "[":
                depth += 1
            elif c == "]":
                depth -= 1
                if depth == 0:
                    return i
        raise JSONPathError("unclosed array expect ]")

    def filter(self, body: str) -> _Filter:
        if not (body.startswith("(") and body.endswith(")")):
            raise JSONPathError(f"invalid filter {body}")
        inner = body[1:-1].strip()
        for op in _OPERATORS:
            idx = _find_top(inner, op)
            if idx >= 0:
                left = _Parser(inner[:idx].strip()).steps()
                return _Filter(left, op, _operand(inner[idx + len(op):].strip()))
        return _Filter(_Parser(inner).steps(), "exists", None)


def _split_top(text: str, sep: str) -> list[str]:
    parts, quote, start = [], "", 0
    for i, c in enumerate(text):
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == sep:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _find_top(text: str, op: str) -> int:
    quote = ""
    for i, c in enumerate(text):
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif text.startswith(op, i):
            return i
    return -1


def _operand(text: str) -> Any:
    if text.startswith(("@", "$")):
        return _Parser(text).steps()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    try:
        return json.loads(text)
    except ValueError as exc:
        raise JSONPathError(f"unrecognized filter operand {text}") from exc


@dataclass(frozen=True)
class JSONPath:
    """A compiled path such as `.status.conditions[?(@.type=="Ready")].status`."""

    source: str
    steps: tuple[Any, ...]

    def find(self, data: Any) -> list[Any]:
        """Every value the path selects, in order; missing keys select nothing (AllowMissingKeys)."""
        try:
            return _walk([data], self.steps)
        except _EvalError:
            # kube's table convertor turns any evaluation error into an empty cell.
            return []


class _EvalError(Exception):
    pass


def compile_path(expression: str) -> JSONPath:
    """Compile `.a.b`, `{.a.b}` or `$.a.b`; raises JSONPathError when it does not parse."""
    text = expression.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    parser = _Parser(text)
    return JSONPath(expression, parser.steps())


def _walk(values: list[Any], steps: tuple[Any, ...]) -> list[Any]:
    after_recursive = False
    for step in steps:
        if after_recursive and isinstance(step, _Field):
            # `..name` looks for the field in every descendant; the ones that are not maps just miss.
            values = [v for v in values if isinstance(v, dict)]
        values = [out for value in values for out in _apply(value, step)]
        after_recursive = isinstance(step, _Recursive)
    return values


def _apply(value: Any, step: Any) -> list[Any]:
    if isinstance(step, _Field):
        if not isinstance(value, dict):
            raise _EvalError(f"{step.name} is not found")
        if step.name == "*":
            return [value[k] for k in sorted(value)]
        return [value[step.name]] if step.name in value else []
    if isinstance(step, _Recursive):
        return _descendants(value)
    if isinstance(step, _Index):
        return _index(value, step)
    if isinstance(step, _Union):
        out: list[Any] = []
        for key in step.keys:
            if isinstance(key, int):
                out.extend(_index(value, _Index(key, None, None, True)))
            elif isinstance(value, dict) and key in value:
                out.append(value[key])
        return out
    if isinstance(step, _Filter):
        return _filter(value, step)
    raise _EvalError(f"unknown step {step!r}")


def _descendants(value: Any) -> list[Any]:
    out = [value]
    children = [value[k] for k in sorted(value)] if isinstance(value, dict) else (
        value if isinstance(value, list) else [])
    for child in children:
        out.extend(_descendants(child))
    return out


def _index(value: Any, step: _Index) -> list[Any]:
    if not isinstance(value, list):
        raise _EvalError("not an array")
    n = len(value)
    if step.single:
        i = step.start if step.start is not None else 0
        i = i + n if i < 0 else i
        if not 0 <= i < n:
            raise _EvalError(f"array index out of bounds: index {i}, length {n}")
        return [value[i]]
    return list(value[slice(step.start, step.stop, step.step)])


def _filter(value: Any, step: _Filter) -> list[Any]:
    if not isinstance(value, list):
        raise _EvalError("not an array")
    out = []
    for item in value:
        lefts = _walk([item], step.left) if step.left else [item]
        if step.op == "exists":
            if lefts:
                out.append(item)
            continue
        rights = _walk([item], step.right) if isinstance(step.right, tuple) else [step.right]
        if not lefts or not rights:
            continue
        if len(lefts) > 1 or len(rights) > 1:
            raise _EvalError("can only compare one element at a time")
        if _compare(lefts[0], step.op, rights[0]):
            out.append(item)
    return out


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "other"


def _compare(left: Any, op: str, right: Any) -> bool:
    lk, rk = _kind(left), _kind(right)
    if lk != rk or lk == "other":
        if op in ("==", "!=") and lk == "other" and rk == "other":
            return bool((left == right) == (op == "=="))
        raise _EvalError("incompatible types for comparison")
    if op == "==":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if lk == "bool":
        raise _EvalError("invalid type for comparison")
    if op == "<":
        return bool(left < right)
    if op == ">":
        return bool(left > right)
    if op == "<=":
        return bool(left <= right)
    return bool(left >= right)
