"""Account security: second factors, step-up on risk, single-use tokens, and the email flows
(verification, password reset, "was this you?")."""
