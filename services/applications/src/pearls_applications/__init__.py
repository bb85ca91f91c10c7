"""Pearls applications service."""
