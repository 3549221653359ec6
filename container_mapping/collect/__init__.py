"""Collectors: each finds what a job built and pushed from one source (see `interface`)."""
