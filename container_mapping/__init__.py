"""container-mapping: container-to-cloud traceability for Azure Pipelines.

Kept import-free on purpose: the post-job step imports this package on every job of every
pipeline, and its start-up time is the product.
"""

__version__ = "0.1.0"
USER_AGENT = f"container-mapping/{__version__}"
