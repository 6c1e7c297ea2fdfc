"""The pycdi command line."""
