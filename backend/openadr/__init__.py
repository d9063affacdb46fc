"""OpenADR 2.0b VTN (IEC 62746-10-1, profile B over simple HTTP), built on openleadr.

`models.py` the known VENs and what the VTN exchanged with them; `services.py` the plain
functions (register a VEN, publish an event, record opt responses and report values);
`vtn.py` the openleadr server wired to them; `enrolment.py` issues a VEN its certificate and
records it; `python -m backend.openadr` runs the VTN.
"""
