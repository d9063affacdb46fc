"""Demand response: customer baseline load (CBL), programs, events, enrolments, performance."""
