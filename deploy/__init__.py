"""Deployment tooling: building the Lambda artifacts offline and replaying failed click batches."""
