"""OpenADR 2.0b VTN (IEC 62746-10-1, profile B over simple HTTP), built on openleadr.

`models.py` the known VENs and what the VTN exchanged with them; `services.py` the plain
functions (register a VEN, publish an event, record opt responses and report values);
`vtn.py` the openleadr server wired to them; `python -m backend.openadr` runs it.
"""
