"""Where import data comes from: HTTP(S), blank (registry and S3 join later)."""
