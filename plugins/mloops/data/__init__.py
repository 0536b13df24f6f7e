"""Data access for mloops: partition sources and the bundled example generator."""
