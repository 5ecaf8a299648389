"""Ticker: a real-time breaking-news push service."""

__version__ = "0.1.0"
__all__ = ["__version__"]
