"""Pearls awards service."""
