"""Subscriptions: who receives which events, how, and with which signing keys."""
