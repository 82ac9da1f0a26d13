"""Small reference models bundled with edgeq (for tests, demos and docs)."""
