"""Pearls notifications service."""
