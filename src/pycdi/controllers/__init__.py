"""CDI controllers: they reach the cluster only through the Kubernetes API."""
