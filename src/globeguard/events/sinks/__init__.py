"""Where deliveries go: the Sink port and its adapters (webhook over HTTP, NATS JetStream)."""
