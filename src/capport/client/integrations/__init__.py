"""Hooks, adapters and transports that make HTTP libraries raise on a captive portal.

Each module imports its library, so import only the one your program uses:
capport.client.integrations.requests, .httpx, .urllib3 or .aiohttp.
"""
