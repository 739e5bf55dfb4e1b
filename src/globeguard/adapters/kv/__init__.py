"""Counters with expiry, shared by the processes that need to agree (rate limits, lockouts):
in process memory by default, in Redis when several processes serve."""
