"""Kairan's Matrix protocol engine.

Pure code: canonical JSON, keys and signatures, event hashes and IDs, redaction,
authorization rules and state resolution for room versions 10, 11 and 12.
Nothing in the pure modules performs I/O or imports asyncio, aiohttp or SQLAlchemy.
"""
