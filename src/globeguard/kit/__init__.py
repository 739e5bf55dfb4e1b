"""Domain-free helpers. Nothing here imports from the rest of globeguard."""
