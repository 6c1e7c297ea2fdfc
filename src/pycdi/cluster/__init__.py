"""The embedded single-machine cluster (embedded mode only)."""
