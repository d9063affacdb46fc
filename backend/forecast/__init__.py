"""Forecasts of meters, resources, VPPs and grid areas: 24 h ahead at 15-minute resolution."""
