"""Renewable energy certificates through the API: devices, certificates, transfers, claims."""
