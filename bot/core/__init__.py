"""The core every part of the bot shares: settings, requests, access levels, reply abilities,
the adapter interface, the command table and the runtime; it imports no adapter."""
