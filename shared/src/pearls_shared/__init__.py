"""Pearls shared library: contracts and plumbing, never business rules."""
