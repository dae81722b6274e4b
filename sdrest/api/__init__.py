"""sdrest's HTTP API."""
