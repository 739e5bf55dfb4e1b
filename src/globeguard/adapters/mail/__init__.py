"""Sending email: over SMTP, or into files under the data directory when no server is
configured. Only wiring picks one; everyone else uses the port."""
