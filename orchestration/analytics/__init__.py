"""Analytics on top of the warehouse marts: pure functions that take data and return data (no I/O)."""
