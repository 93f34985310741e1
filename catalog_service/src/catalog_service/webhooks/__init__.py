"""Telling the owners: signed webhooks (Standard Webhooks) when an API breaks, changes,
recovers or goes invalid. Events are written to an outbox with the change that makes
them (events.py); any replica sends them, signed (signing.py), through the collector's
network policy, retrying with back-off (delivery.py)."""
