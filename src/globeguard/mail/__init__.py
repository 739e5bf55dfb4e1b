"""Email: messages written to a mail outbox in the caller's transaction and sent afterwards by
the mail sender, through the mail port (SMTP, or files under the data directory)."""
