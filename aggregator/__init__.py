"""The click aggregator Lambda: CloudWatch Logs subscription -> batched counters."""
