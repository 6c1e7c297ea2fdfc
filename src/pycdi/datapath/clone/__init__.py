"""Host-assisted clone workers: a source streaming a volume's data (never its holes) to a target writing it."""
