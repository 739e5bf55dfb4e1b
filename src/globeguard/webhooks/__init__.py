"""For receivers of Globeguard webhooks: `from globeguard.webhooks.verify import verify`."""
