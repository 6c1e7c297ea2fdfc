"""The upload proxy: token check and streaming proxy to the upload server."""
