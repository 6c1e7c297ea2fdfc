"""The worker side: sources, format readers, image tools, progress."""
