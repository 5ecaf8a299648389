"""Consumers of the stream: the Python client, the push bridge, push payloads."""
