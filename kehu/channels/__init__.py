"""Channels: sending messages to customers (see manifest.py)."""
