"""The upload server: receives a stream into a volume."""
