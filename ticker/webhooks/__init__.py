"""Webhook administration: endpoints, secrets, signing, the SSRF guard."""
