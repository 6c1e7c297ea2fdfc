"""pycdi: KubeVirt's Containerized Data Importer in Python, with an embedded single-machine cluster."""

__version__ = "0.1.0"
