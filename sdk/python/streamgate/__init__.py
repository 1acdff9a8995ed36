"""Streamgate Python SDK: an asyncio client with failover across gateway
nodes and exact recovery of every subscription (docs/protocol.md)."""

from .client import Client, Message, Position, Published, StreamgateError, Subscription, backoff_delay, parse_delivery

__all__ = ["Client", "Message", "Position", "Published", "StreamgateError", "Subscription", "backoff_delay",
           "parse_delivery"]
