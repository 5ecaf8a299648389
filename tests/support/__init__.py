"""Test support: process harness, wait helpers, fakes. Fixtures stay in conftest."""
