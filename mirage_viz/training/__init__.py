"""Seeded, CPU-feasible training scripts for the embedded models (one command each)."""
