"""Ingestion: what jobs report (our versioned report, and Defender's wire format), stored once."""
