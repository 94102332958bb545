"""Counting distinct visitors: shared by the aggregator (which writes sketches) and the admin (which reads them)."""
