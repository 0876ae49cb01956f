"""Prometheus metrics (guide 20109-20220): call counts and latencies, resource metrics, import job progress.

``usage`` is pure (what the index counters count; the index adapters import it); ``calls`` observes every
answered request; ``resources`` turns the index counters into gauges at scrape time; ``exporter`` assembles
the registry (one process or ``--workers N``) and serves ``GET /metrics``. See docs/metrics.md.
"""
