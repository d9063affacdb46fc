"""Distributed energy resources (DERs): the registry and their W3C WoT Thing Descriptions."""
