"""Alerts: events, subscriptions, signing, delivery, SSRF guard"""
