"""Links from digests to cloud resources: registry artifacts and the workloads that run them."""
