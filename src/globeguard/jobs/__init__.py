"""Bulk jobs: user exports and imports, and the Auth0 connector."""
