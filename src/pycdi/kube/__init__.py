"""The one client-side adapter to the Kubernetes API."""
