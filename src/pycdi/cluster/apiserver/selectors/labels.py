"""Label selectors: the `labelSelector` query syntax and metav1.LabelSelector, as apimachinery parses them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..validation.names import go_value, is_label_value, is_qualified_name
from .errors import SelectorError

# ---- label selectors --------------------------------------------------------------------------------

IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "in", "notin", "=", "==", "!="
EXISTS, DOES_NOT_EXIST, GT, LT = "exists", "!", "gt", "lt"
_BINARY_OPERATORS = ("in", "!=", "==", "=", "gt", "lt", "notin")
_SPECIAL = frozenset("=!(),<>")
_WHITESPACE = frozenset(" \t\r\n")
_TOKENS = {
    ")": ")",
    ",": ",",
    "!": "!",
    "==": "==",
    "=": "=",
    ">": "gt",
    "<": "lt",
    "!=": "!=",
    "in": IN,
    "notin": NOT_IN,
    "(": "(",
}
_IDENT, _END, _ERROR = "ident", "end", "error"


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if op in (GT, LT) and self.key in labels:
            try:
                have, want = int(labels[self.key]), int(self.values[0])
            except ValueError:
                return False
            return have > want if op == GT else have < want
        return False


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of requirements. `nothing` is the selector of a nil metav1.LabelSelector."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @property
    def empty(self) -> bool:
        """True when the selector selects everything (no requirement)."""
        return not self.nothing and not self.requirements

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.nothing:
            return False
        return all(r.matches(labels) for r in self.requirements)


def _field_invalid(path: str, value: Any, detail: str) -> str:
    """A field.Error's text (`<path>: Invalid value: <value>: <detail>`), as parse errors embed it."""
    return f"{path}: Invalid value: {go_value(value)}: {detail}"


def _aggregate(messages: list[str]) -> str:
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def new_requirement(key: str, op: str, values: list[str], path: str = "") -> Requirement:
    """Build a requirement, validated as labels.NewRequirement does (errors aggregated into one message)."""

    def sub(child: str) -> str:
        return f"{path}.{child}" if path else child

    errs: list[str] = []
    key_errs = is_qualified_name(key)
    if key_errs:
        errs.append(_field_invalid(sub("key"), key, "; ".join(key_errs)))
    if op in (IN, NOT_IN):
        if not values:
            errs.append(
                _field_invalid(
                    sub("values"), values, "for 'in', 'notin' operators, values set can't be empty"
                )
            )
    elif op in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(values) != 1:
            errs.append(
                _field_invalid(sub("values"), values, "exact-match compatibility requires one single value")
            )
    elif op in (EXISTS, DOES_NOT_EXIST):
        if values:
            errs.append(
                _field_invalid(
                    sub("values"), values, "values set must be empty for exists and does not exist"
                )
            )
    elif op in (GT, LT):
        if len(values) != 1:
            errs.append(
                _field_invalid(
                    sub("values"), values, "for 'Gt', 'Lt' operators, exactly one value is required"
                )
            )
        for i, v in enumerate(values):
            try:
                int(v, 10)
            except ValueError:
                errs.append(
                    _field_invalid(
                        f"{sub('values')}[{i}]", v, "for 'Gt', 'Lt' operators, the value must be an integer"
                    )
                )
    else:
        errs.append(
            f"{sub('operator')}: Unsupported value: {go_value(op)}: supported values: "
            + ", ".join(
                f'"{o}"'
                for o in (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, EXISTS, DOES_NOT_EXIST, GT, LT)
            )
        )
    for i, v in enumerate(values):
        value_errs = is_label_value(v)
        if value_errs:
            errs.append(_field_invalid(f"{sub('values')}[{i}][{key}]", v, "; ".join(value_errs)))
    if errs:
        raise SelectorError(_aggregate(errs))
    return Requirement(key, op, tuple(values))


def _lex(text: str) -> list[tuple[str, str]]:
    """Tokens as kube's label selector lexer makes them: (kind, literal)."""
    items: list[tuple[str, str]] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= end:
            items.append((_END, ""))
            return items
        if text[pos] in _SPECIAL:
            # Longest run of special characters that still forms a known operator.
            buf, last = "", ""
            while pos < end and text[pos] in _SPECIAL:
                if buf + text[pos] in _TOKENS:
                    buf += text[pos]
                    last = buf
                    pos += 1
                elif last:
                    break
                else:
                    buf += text[pos]
                    pos += 1
            if not last:
                items.append((_ERROR, f"error expected: keyword found '{buf}'"))
            else:
                items.append((_TOKENS[last], last))
            continue
        start = pos
        while pos < end and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
            pos += 1
        word = text[start:pos]
        items.append((_TOKENS[word], word) if word in ("in", "notin") else (_IDENT, word))


class _Parser:
    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.pos = 0

    def peek(self, values: bool = True) -> tuple[str, str]:
        tok, lit = self.items[self.pos]
        if values and tok in (IN, NOT_IN):
            tok = _IDENT
        return tok, lit

    def take(self, values: bool = True) -> tuple[str, str]:
        item = self.peek(values)
        self.pos += 1
        return item

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.peek()
            if tok in (_IDENT, "!"):
                try:
                    reqs.append(self.requirement())
                except SelectorError as exc:
                    raise SelectorError(f"unable to parse requirement: {exc}") from None
                tok, lit = self.take()
                if tok == _END:
                    return reqs
                if tok == ",":
                    tok2, lit2 = self.peek()
                    if tok2 not in (_IDENT, "!"):
                        raise SelectorError(f"found '{lit2}', expected: identifier after ','")
                    continue
                raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            if tok == _END:
                return reqs
            raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        op = ""
        tok, lit = self.take()
        if tok == "!":
            op = DOES_NOT_EXIST
            tok, lit = self.take()
        if tok != _IDENT:
            raise SelectorError(f"found '{lit}', expected: identifier")
        key_errs = is_qualified_name(lit)
        if key_errs:
            # kube validates the key here with a nil field path, hence the odd `<nil>`.
            raise SelectorError(_field_invalid("<nil>", lit, "; ".join(key_errs)))
        key = lit
        if self.peek()[0] in (_END, ","):
            return new_requirement(key, op or EXISTS, [])
        if op == DOES_NOT_EXIST:
            # kube ends a `!key` requirement at the key whatever follows; the caller then complains.
            return new_requirement(key, DOES_NOT_EXIST, [])
        tok, lit = self.take(values=False)
        ops = {IN: IN, NOT_IN: NOT_IN, "=": EQUALS, "==": DOUBLE_EQUALS, "!=": NOT_EQUALS, "gt": GT, "lt": LT}
        if tok not in ops:
            raise SelectorError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        op = ops[tok]
        values = self.set_values() if op in (IN, NOT_IN) else self.exact_value()
        return new_requirement(key, op, sorted(values))

    def set_values(self) -> set[str]:
        tok, lit = self.take()
        if tok != "(":
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.peek()
        if tok in (_IDENT, ","):
            values = self.identifiers()
            if self.take()[0] != ")":
                raise SelectorError(f"found '{lit}', expected: ')'")
            return values
        if tok == ")":
            self.take()
            return {""}
        raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def identifiers(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self.take()
            if tok == _IDENT:
                values.add(lit)
                tok2, lit2 = self.peek()
                if tok2 == ",":
                    continue
                if tok2 == ")":
                    return values
                raise SelectorError(f"found '{lit2}', expected: ',' or ')'")
            if tok == ",":
                # Empty members: `(,a)`, `(a,,b)` and `(a,)` all contain the empty string.
                if not values:
                    values.add("")
                tok2, _ = self.peek()
                if tok2 == ")":
                    values.add("")
                    return values
                if tok2 == ",":
                    self.take()
                    values.add("")
                continue
            raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        tok, _ = self.peek()
        if tok in (_END, ","):
            return {""}
        tok, lit = self.take()
        if tok == _IDENT:
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse `a=b,c!=d,e in (f,g),h notin (i),j,!k` as labels.Parse does."""
    reqs = _Parser(text).parse()
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))


def label_selector_from_dict(sel: Mapping[str, Any] | None) -> LabelSelector:
    """A metav1.LabelSelector as a selector: None matches nothing, `{}` matches everything."""
    if sel is None:
        return LabelSelector(nothing=True)
    match_labels = sel.get("matchLabels") or {}
    exprs = sel.get("matchExpressions") or []
    reqs: list[Requirement] = []
    for k, v in match_labels.items():
        reqs.append(new_requirement(str(k), EQUALS, [str(v)]))
    ops = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}
    for expr in exprs:
        operator = str(expr.get("operator", ""))
        if operator not in ops:
            raise SelectorError(f"{go_value(operator)} is not a valid label selector operator")
        values = [str(v) for v in (expr.get("values") or [])]
        reqs.append(new_requirement(str(expr.get("key", "")), ops[operator], values))
    return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))
