"""Serving with uvicorn: the server, the fast lane, parking. The only room that imports uvicorn."""
