"""Microsoft Defender for Cloud: the job's OIDC token and Defender's ingestion format."""
