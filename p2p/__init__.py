"""Authenticated, encrypted, bounded trio transport between approved validators."""
