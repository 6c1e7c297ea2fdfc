"""The error a malformed or unsupported selector raises (the server answers 400 with its message)."""

from __future__ import annotations


class SelectorError(ValueError):
    """A selector kube-apiserver would refuse with 400 BadRequest; the message is kube's."""
