"""Defender for Cloud's view of images (registries, clusters, finding counts), linked by digest."""
