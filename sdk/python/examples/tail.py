"""Prints every message of the endpoints named on the command line, across
reconnects and node failover:

    python sdk/python/examples/tail.py ws://127.0.0.1:8080/ws /scores/live/nba ...
    STREAMGATE_TOKEN=... (a bearer token, if the gateway asks for one)
    STREAMGATE_URLS=ws://node1/ws,ws://node2/ws (instead of the first argument, for a cluster)
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))  # run from a checkout without installing

from streamgate import Client  # noqa: E402


async def tail(subscription) -> None:
    async for message in subscription:
        print(f"{message.endpoint} #{message.seq} {message.text()}", flush=True)


async def main(args: list[str]) -> int:
    urls = os.environ["STREAMGATE_URLS"].split(",") if "STREAMGATE_URLS" in os.environ else args[:1]
    endpoints = args if "STREAMGATE_URLS" in os.environ else args[1:]
    if not urls or not endpoints:
        print("usage: tail.py WS_URL ENDPOINT...", file=sys.stderr)
        return 2
    async with Client(urls, token=os.environ.get("STREAMGATE_TOKEN")) as client:
        client.on("state", lambda state: print(f"[{state}] {client.node}", file=sys.stderr))
        client.on("error", lambda error: print(f"error {error}", file=sys.stderr))
        subscriptions = [client.subscribe(endpoint) for endpoint in endpoints]
        for s in subscriptions:
            s.on("gap", lambda notice, s=s: print(f"{s.endpoint}: {notice['message']}", file=sys.stderr))
        await asyncio.gather(*(tail(s) for s in subscriptions))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main(sys.argv[1:])))
    except KeyboardInterrupt:
        pass
