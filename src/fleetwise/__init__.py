"""fleetwise: where and how should model M serve workload W on AWS, under latency SLOs, at the lowest cost."""

__version__ = "0.1.0"
