"""Globeguard: a self-hosted identity service with built-in login intelligence."""

__version__ = "0.1.0"
