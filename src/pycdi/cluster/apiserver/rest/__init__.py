"""The REST surface of the embedded API server: routing, bodies, verbs, watches and reviews over aiohttp."""
