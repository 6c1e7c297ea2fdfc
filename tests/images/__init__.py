"""Scripts that build the test image corpus (no image is committed)."""
