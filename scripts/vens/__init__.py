"""Simulated OpenADR VENs for `make run`: households and the community battery as real
openleadr `OpenADRClient`s against the VTN (one process hosting them all)."""
