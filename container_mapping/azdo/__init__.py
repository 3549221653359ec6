"""Azure DevOps: the job's OIDC token (agent side, standard library only)."""
