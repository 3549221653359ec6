"""Sinks: where post-job sends a report (see `interface`), one module per wire protocol."""
