"""The agent's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """Prometheus metrics, prefix dweb_agent_; no CIDs or URLs as label values
    (each distinct label value is a time series kept forever)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.up = Gauge("dweb_agent_up", "1 while the agent runs", registry=registry)
        self.targets = Gauge("dweb_agent_targets", "Targets being watched", registry=registry)
        self.polls = Counter("dweb_agent_polls_total", "Target polls", ["kind", "outcome"], registry=registry)
        self.poll_seconds = Histogram(
            "dweb_agent_poll_seconds",
            "Duration of one target poll",
            ["kind"],
            registry=registry,
            buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 1800),
        )
        self.items = Counter("dweb_agent_items_total", "Items examined", ["status"], registry=registry)
        self.reused = Counter(
            "dweb_agent_items_reused_total", "Items seen before: not fetched again", registry=registry
        )
        self.findings = Counter("dweb_agent_findings_total", "New findings", ["list", "retroactive"], registry=registry)
        self.list_entries = Gauge("dweb_agent_list_entries", "Live entries per list", ["list"], registry=registry)
        self.list_syncs = Counter("dweb_agent_list_syncs_total", "List refreshes", ["outcome"], registry=registry)
        self.deliveries = Counter(
            "dweb_agent_webhook_attempts_total", "Webhook delivery attempts", ["outcome"], registry=registry
        )
        self.delivery_seconds = Histogram(
            "dweb_agent_webhook_attempt_seconds",
            "Duration of one delivery attempt",
            registry=registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15),
        )
        self.content_changes = Counter(
            "dweb_agent_content_state_changes_total",
            "Matched content appearing or disappearing",
            ["state"],
            registry=registry,
        )
        self.api_scans = Counter(
            "dweb_agent_api_scans_total",
            "Scans queued through the API, by how they ended",
            ["status"],
            registry=registry,
        )
