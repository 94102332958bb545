"""What tests and benchmarks share: the click pipeline harness, fault injection and a fresh aggregator.

- pipeline.py: a Kinesis stream, the event source mapping stand-in and the real aggregator;
- faults.py: failing botocore calls before they are sent, or after they landed (a lost response),
  and whole outages at the HTTP layer;
- aggregator.py: the aggregator handler freshly imported inside a moto mock.

Nothing here imports pytest, so the benchmarks can use it outside a test run (bench/simulation.py
feeds this pipeline from redirect containers in simulated time).
"""
