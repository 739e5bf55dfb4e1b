"""Ingestion of users from an external identity provider (the seed's front door)."""
