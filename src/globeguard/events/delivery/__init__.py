"""The delivery ledger: fan-out of outbox events to subscriptions, claims, attempts, redrive."""
