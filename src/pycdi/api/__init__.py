"""Typed API objects, constants, phases, condition reasons, annotation keys and CRD schemas."""
