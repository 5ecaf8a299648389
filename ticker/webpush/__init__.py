"""Web Push for browsers: subscriptions, VAPID keys, alerts (the worker sends them)."""
