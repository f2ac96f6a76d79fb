"""Alerts: events and who receives them, signing, the outbox delivery worker."""
