"""Pearls mentoring service."""
