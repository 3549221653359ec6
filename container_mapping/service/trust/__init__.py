"""Trust: who is calling. Azure DevOps pipeline tokens for writes, API keys for reads and links.

Every route declares one of the dependencies of `trust.dependencies`; a test fails for any
route that does not.
"""
