"""A Python entry-point tool for the call tests: slow on purpose, so the bot says its filler."""
import asyncio


async def check_stock(item: str) -> str:
    await asyncio.sleep(1.2)
    return f"{item}: three in stock"
