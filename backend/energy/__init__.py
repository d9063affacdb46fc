"""Energy transfers: each ENERGY trade as a scheduled delivery of Wh, and positions."""
