"""Transports: each implements bot.engine.port.Transport."""
