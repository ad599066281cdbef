"""Deliveries: the outbox rules, and one module per channel."""
