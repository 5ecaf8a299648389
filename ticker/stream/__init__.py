"""The read side: one subscription, the hub, and the SSE and WebSocket transports."""
