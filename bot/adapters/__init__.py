"""Adapters that carry commands in from a place people talk, and replies back out."""
