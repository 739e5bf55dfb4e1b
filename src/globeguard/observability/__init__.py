"""What operators watch: Prometheus metrics (and the alert rules in deploy/prometheus)."""
