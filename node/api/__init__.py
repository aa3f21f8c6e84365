"""The client wire API: framing, message schemas, the backend protocol and the trio server.

See docs/protocol.md for the specification a client in another language can be written from.
"""
