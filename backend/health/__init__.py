"""Freshness of the stack: component heartbeats and the checks /health and /metrics report."""
