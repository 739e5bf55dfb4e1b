"""Second factors: an authenticator app (TOTP) and recovery codes."""
