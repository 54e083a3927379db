"""End-to-end tests: real processes, HTTP and WebSocket."""
