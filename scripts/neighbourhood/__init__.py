"""The simulated neighbourhood behind `make run`: households, PV, a battery, an aggregator."""
