"""The Matrix adapter: rooms on a homeserver, over the Client-Server API (matrix-nio)."""
