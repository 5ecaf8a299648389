"""ASGI middleware and error responses: CORS, security headers, caps and rate limits."""
