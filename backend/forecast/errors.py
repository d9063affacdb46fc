"""Errors of the forecast domain (mapped to problem details at the API edge)."""

from backend.core.errors import InvalidInput, NotFound, PermissionDenied


class WeatherUnavailable(InvalidInput):
    code = "weather-unavailable"
    title = "The weather provider has no data for this place and time"


class ForecastTargetNotFound(NotFound):
    code = "forecast-target-not-found"
    title = "Unknown meter, resource, VPP or grid area"


class ForecastAccessDenied(PermissionDenied):
    code = "forecast-access-denied"
    title = "Not allowed to read this target's history"


class InsufficientHistory(InvalidInput):
    code = "insufficient-history"
    title = "Not enough stored history to forecast from"
