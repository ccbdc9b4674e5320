"""Run a writer: in one transaction or chunk by chunk, with retries, guards and session sync."""
