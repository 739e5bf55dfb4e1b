"""Auth0: the Management API client, the sync job, and log-stream ingestion."""
