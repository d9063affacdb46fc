"""Benchmarks: each module `bench/<name>.py` has `run()` yielding figures; one JSON line each."""
