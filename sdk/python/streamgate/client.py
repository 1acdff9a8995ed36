"""The client: one connection at a time to one of the cluster's nodes, every
subscription resumed from its last position after each reconnect, and a move
to another node when the one it is on drains (`moving`)."""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import random
import struct
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Union
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

HEADER = struct.Struct(">BBHHQq")
KIND_MESSAGE = 1
FLAG_SNAPSHOT = 1
#: The record's `traceparent` follows the epoch: one length byte, then its bytes.
FLAG_TRACE_CONTEXT = 2

TokenProvider = Union[str, Callable[[], Union[str, Awaitable[str]]], None]


class StreamgateError(Exception):
    """A refused request (`code` is the protocol's: `forbidden`, `rate_limited`,
    `publish_failed`, ...) or an SDK failure (`disconnected`, `timeout`, `closed`)."""

    def __init__(self, code: str, message: str, endpoint: str | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.endpoint = endpoint


@dataclass(frozen=True)
class Position:
    """Where a message stands in its endpoint's sequence (epoch: opaque, compare for equality)."""

    epoch: str
    seq: int


@dataclass(frozen=True)
class Message:
    endpoint: str
    epoch: str
    #: The record's Kafka partition offset: increases within an endpoint.
    seq: int
    #: ms since the Unix epoch, -1 when unknown.
    timestamp: int
    #: The latest message, sent first because of `snapshot=True`.
    snapshot: bool
    #: The record's value, byte for byte.
    payload: bytes
    #: The record's W3C `traceparent` header, when the frame carries trace
    #: context (a gateway with `tracing.propagate`); None otherwise.
    traceparent: str | None = None

    @property
    def position(self) -> Position:
        return Position(self.epoch, self.seq)

    def text(self) -> str:
        return self.payload.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass(frozen=True)
class Published:
    endpoint: str
    partition: int
    #: The seq subscribers see for this message.
    offset: int


def parse_delivery(frame: bytes) -> Message | None:
    """Reads a binary delivery frame (docs/protocol.md, "delivery"); None when it
    is not one or is cut short. With flag bit 1, the trace context (one length
    byte, then the record's `traceparent`) sits between the epoch and the payload."""
    if len(frame) < HEADER.size:
        return None
    kind, flags, endpoint_length, epoch_length, seq, timestamp = HEADER.unpack_from(frame)
    endpoint_end = HEADER.size + endpoint_length
    epoch_end = endpoint_end + epoch_length
    if kind != KIND_MESSAGE or epoch_end > len(frame):
        return None
    payload_start = epoch_end
    traceparent = None
    if flags & FLAG_TRACE_CONTEXT:
        if epoch_end + 1 > len(frame):
            return None
        trace_end = epoch_end + 1 + frame[epoch_end]
        if trace_end > len(frame):
            return None
        traceparent = bytes(frame[epoch_end + 1:trace_end]).decode("utf-8", "replace")
        payload_start = trace_end
    return Message(endpoint=frame[HEADER.size:endpoint_end].decode("utf-8", "replace"),
                   epoch=frame[endpoint_end:epoch_end].decode("ascii", "replace"), seq=seq, timestamp=timestamp,
                   snapshot=bool(flags & FLAG_SNAPSHOT), payload=bytes(frame[payload_start:]),
                   traceparent=traceparent)


def backoff_delay(attempt: int, min_delay: float, max_delay: float, jitter: bool = True,
                  rand: Callable[[], float] = random.random) -> float:
    """Seconds before reconnect attempt `attempt` (0-based): exponential, capped, full jitter."""
    ceiling = min(max_delay, min_delay * 2 ** min(attempt, 30))
    return rand() * ceiling if jitter else ceiling


Listener = Callable[..., Any]


class _Emitter:
    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}

    def on(self, event: str, listener: Listener) -> Callable[[], None]:
        """Calls `listener` on `event`; returns a function that removes it."""
        self._listeners.setdefault(event, []).append(listener)
        return lambda: self._listeners.get(event, []).remove(listener)

    def _listener_count(self, event: str) -> int:
        return len(self._listeners.get(event, []))

    def _emit(self, event: str, *args: Any) -> None:
        for listener in list(self._listeners.get(event, [])):
            listener(*args)


class Subscription(_Emitter):
    """One endpoint's subscription: `async for message in subscription`, or
    `on("message", ...)`. Until one or the other is there, messages wait
    (none is lost to a late iterator); with only `message` listeners none is
    kept. Events: message, subscribed, replayed, gap, stale_epoch, retry, ended."""

    def __init__(self, client: Client, endpoint: str, position: Position | None, snapshot: bool):
        super().__init__()
        self._client = client
        self.endpoint = endpoint
        #: The gateway's canonical name for the endpoint, once subscribed.
        self.canonical: str | None = None
        #: The last delivered position (or the one resumed from): store it to resume later.
        self.position = position
        self.snapshot = snapshot and position is None
        self.ended = False
        self.suspended: str | None = None
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue()
        self._iterated = False

    async def unsubscribe(self) -> None:
        await self._client._unsubscribe(self)

    def _deliver(self, message: Message) -> None:
        p = self.position
        if p is not None and message.epoch == p.epoch and message.seq <= p.seq:
            return  # already delivered: a duplicate the gateway could not have sent
        self.position = message.position
        self._emit("message", message)
        if self._iterated or self._listener_count("message") == 0:
            self._queue.put_nowait(message)

    def _go_live(self, epoch: str, seq: int) -> None:
        """The gateway's `live` position: live delivery starts after it. Kept as the
        resume position while nothing later was delivered, so a failover before the
        first message still resumes exactly."""
        p = self.position
        if p is None or p.epoch != epoch or seq > p.seq:
            self.position = Position(epoch, seq)

    def _end(self, reason: dict) -> None:
        if self.ended:
            return
        self.ended = True
        self._emit("ended", reason)
        self._queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[Message]:
        self._iterated = True
        return self

    async def __anext__(self) -> Message:
        if self.ended and self._queue.empty():
            raise StopAsyncIteration
        message = await self._queue.get()
        if message is None:
            raise StopAsyncIteration
        return message


class Client(_Emitter):
    """A connection to a Streamgate cluster that survives network loss, node
    failure and draining nodes. Events: state, connected ({url, subject,
    expires_at, trace_context}), disconnected, moving, token_refreshed, error.

        async with Client(["ws://node1:8080/ws", "ws://node2:8080/ws"], token=provider) as client:
            async for message in client.subscribe("/scores/live/nba"):
                print(message.seq, message.text())
    """

    def __init__(self, urls: list[str] | str, token: TokenProvider = None, *, min_reconnect_delay: float = 0.1,
                 max_reconnect_delay: float = 10.0, jitter: bool = True, liveness_timeout: float = 15.0,
                 request_timeout: float = 10.0, retry_resume_delay: float = 0.5,
                 rand: Callable[[], float] = random.random):
        super().__init__()
        self._urls = [urls] if isinstance(urls, str) else list(urls)
        if not self._urls:
            raise StreamgateError("bad_options", "urls: give at least one gateway URL")
        self._token_provider = token
        self._min_delay, self._max_delay, self._jitter = min_reconnect_delay, max_reconnect_delay, jitter
        self._liveness_timeout = liveness_timeout
        self._request_timeout = request_timeout
        self._retry_resume_delay = retry_resume_delay
        #: Uniform in [0, 1): the back-off jitter and the moment of a move (a test fixes it).
        self._rand = rand
        self._node = 0
        self._state = "idle"
        self._socket: ClientConnection | None = None
        self._subscriptions: dict[str, Subscription] = {}
        self._pending: dict[int, asyncio.Future] = {}
        self._next_id = 1
        self._connected = asyncio.Event()
        self._closed = False
        self._task: asyncio.Task | None = None
        self._background: set[asyncio.Future] = set()
        #: The planned move off the current connection (a `moving` notice), if any.
        self._move: asyncio.Future | None = None
        #: The move's delay ended: no new request goes on the current connection.
        self._leaving = False

    @property
    def state(self) -> str:
        """idle, connecting, connected, reconnecting or closed."""
        return self._state

    @property
    def node(self) -> str:
        """The URL of the node the client is on (or trying)."""
        return self._urls[self._node]

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        """Starts the connection task; returns once a node welcomed the client."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="streamgate-client")
        await self._wait_connected()

    def subscribe(self, endpoint: str, *, from_: Position | None = None, snapshot: bool = False) -> Subscription:
        """Subscribes (now if connected, and again after every reconnect, from
        the last delivered position). `from_` resumes after a position."""
        existing = self._subscriptions.get(endpoint)
        if existing and not existing.ended:
            return existing
        subscription = Subscription(self, endpoint, from_, snapshot)
        self._subscriptions[endpoint] = subscription
        if self._state == "connected":
            self._spawn(self._send_subscribe(subscription))
        return subscription

    async def publish(self, endpoint: str, payload: str | bytes, *, traceparent: str | None = None) -> Published:
        """Resolves once Kafka acknowledged the record; raises StreamgateError
        (`disconnected`: lost before the answer, the record may have been produced).
        `traceparent`, a W3C trace context, becomes the record's `traceparent`
        header on a gateway with `tracing.propagate` (which refuses a malformed
        one with `bad_request`) and is ignored by others."""
        request: dict[str, Any] = {"type": "publish", "endpoint": endpoint}
        if isinstance(payload, str):
            request["payload"] = payload
        else:
            request["payload_base64"] = base64.b64encode(payload).decode()
        if traceparent is not None:
            request["traceparent"] = traceparent
        await self._wait_connected()
        reply = await self._request(request)
        return Published(reply["endpoint"], reply["partition"], reply["offset"])

    async def close(self) -> None:
        """Closes the connection for good; subscriptions end."""
        if self._closed:
            return
        self._closed = True
        self._fail_pending(StreamgateError("closed", "the client was closed"))
        for subscription in self._subscriptions.values():
            subscription._end({"code": "closed"})
        self._subscriptions.clear()
        if self._socket is not None:
            await self._socket.close()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        for task in list(self._background):
            task.cancel()
        self._set_state("closed")

    # ---------------------------------------------------------- connection

    async def _run(self) -> None:
        attempt = 0
        while not self._closed:
            self._set_state("connecting" if self._state == "idle" else "reconnecting")
            url = self._urls[self._node]
            welcomed = False
            try:
                token = await self._token()
                target = url + (("&" if "?" in url else "?") + "access_token=" + quote(token, safe="") if token else "")
                half = self._liveness_timeout / 2
                async with connect(target, subprotocols=["streamgate.v1"], open_timeout=self._request_timeout,
                                   ping_interval=half, ping_timeout=half, max_size=None) as socket:
                    self._socket = socket
                    async for frame in socket:
                        if isinstance(frame, str):
                            welcomed = self._on_text(frame) or welcomed
                        else:
                            self._on_binary(frame)
                    code, reason = socket.close_code, socket.close_reason
            except (OSError, WebSocketException, asyncio.TimeoutError) as error:
                code, reason = 1006, str(error)
            except StreamgateError as error:
                self._emit("error", error)
                code, reason = 1006, error.message
            finally:
                self._socket = None
                self._connected.clear()
                moved = self._end_move()
                self._fail_pending(StreamgateError("disconnected", f"the connection to {url} was lost"))
            if self._closed:
                return
            if moved:
                code, reason = 1000, "moving"
            self._emit("disconnected", {"url": url, "code": code, "reason": reason})
            if welcomed or moved:
                attempt = 0
            self._node = (self._node + 1) % len(self._urls)
            self._set_state("reconnecting")
            if moved:
                continue  # nothing failed, and the move's delay was drawn already: no back-off
            await asyncio.sleep(backoff_delay(attempt, self._min_delay, self._max_delay, self._jitter, self._rand))
            attempt += 1

    async def _token(self) -> str | None:
        provider = self._token_provider
        if provider is None or isinstance(provider, str):
            return provider
        try:
            value = provider()
            return await value if inspect.isawaitable(value) else value
        except Exception as error:
            raise StreamgateError("token_provider", f"the token provider failed: {error}") from error

    async def _wait_connected(self) -> None:
        if self._closed:
            raise StreamgateError("closed", "the client was closed")
        await self._connected.wait()

    def _set_state(self, state: str) -> None:
        if self._state != state:
            self._state = state
            self._emit("state", state)

    def _spawn(self, coroutine: Awaitable[Any]) -> asyncio.Future:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # ---------------------------------------------------- a draining node

    def _plan_move(self, notice: dict) -> None:
        """The node is draining (docs/protocol.md, "Moving to another node"). The
        client moves after a delay drawn uniformly from the node's window, so that
        the node's clients spread their reconnections over it instead of arriving
        at the other nodes at once; until then this connection serves as before.
        A second notice changes nothing: one move is under way."""
        socket = self._socket
        if socket is None or self._move is not None or self._closed:
            return
        window = notice.get("reconnect_within_ms")
        valid = isinstance(window, (int, float)) and not isinstance(window, bool)
        window_ms = max(0.0, float(window)) if valid else 0.0  # no window: move now
        delay_ms = self._rand() * window_ms
        self._move = self._spawn(self._move_after(socket, delay_ms / 1000))
        self._emit("moving", {"url": self.node, "reconnect_within_ms": window_ms, "delay_ms": delay_ms})

    async def _move_after(self, socket: ClientConnection, delay: float) -> None:
        """Leaves the draining node after `delay` seconds. New requests wait for the
        next connection (as while reconnecting); those already sent are answered by
        the draining node (within the request timeout), so a publish in flight gets
        its `published` rather than a `disconnected` that would leave its fate
        unknown. The close (1000 `moving`) ends _run's connection, and _run connects
        to the next node at once; subscriptions resume there on its `welcome`."""
        await asyncio.sleep(delay)
        if self._socket is not socket or self._closed:
            return
        self._leaving = True
        self._connected.clear()
        self._set_state("reconnecting")
        in_flight = [future for future in self._pending.values() if not future.done()]
        if in_flight:
            await asyncio.wait(in_flight, timeout=self._request_timeout)
        if self._socket is socket and not self._closed:
            await socket.close(1000, "moving")

    def _end_move(self) -> bool:
        """The connection ended: a move still waiting for its delay is dropped (the
        usual reconnect takes its place, so there is one reconnect, not two). True
        when the connection ended because the client was leaving it: the next node
        is then tried at once."""
        move, leaving = self._move, self._leaving
        self._move, self._leaving = None, False
        if move is not None and not leaving:
            move.cancel()
        return leaving

    # -------------------------------------------------------------- frames

    def _on_binary(self, frame: bytes) -> None:
        message = parse_delivery(frame)
        if message is not None and (subscription := self._by_endpoint(message.endpoint)):
            subscription._deliver(message)

    def _by_endpoint(self, endpoint: str | None) -> Subscription | None:
        if endpoint is None:
            return None
        direct = self._subscriptions.get(endpoint)
        if direct and not direct.ended:
            return direct
        return next((s for s in self._subscriptions.values() if s.canonical == endpoint and not s.ended), None)

    def _on_text(self, text: str) -> bool:
        """Handles a control frame; True for `welcome`."""
        try:
            reply = json.loads(text)
        except ValueError:
            return False
        future = self._pending.pop(reply.get("id"), None) if isinstance(reply.get("id"), int) else None
        if future is not None:
            if not future.done():
                if reply.get("type") == "error":
                    future.set_exception(StreamgateError(reply["code"], reply["message"], reply.get("endpoint")))
                else:
                    future.set_result(reply)
            return False
        kind = reply.get("type")
        if kind == "welcome" and self._leaving:
            return True  # a late welcome on the connection being left: resubscribe on the next one
        if kind == "welcome":
            self._set_state("connected")
            self._connected.set()
            self._emit("connected", {"url": self.node, "subject": reply.get("subject"),
                                     "expires_at": reply.get("expires_at"),
                                     # The node's deliveries may carry trace context (`tracing.propagate`).
                                     "trace_context": reply.get("trace_context") is True})
            # A new connection came with the provider's current token: subscriptions
            # a token expiry suspended resume with the others.
            for subscription in list(self._subscriptions.values()):
                subscription.suspended = None
                if not subscription.ended:
                    self._spawn(self._send_subscribe(subscription))
            return True
        subscription = self._by_endpoint(reply.get("endpoint"))
        if kind == "replayed" and subscription:
            subscription._emit("replayed", reply)
        elif kind == "live" and subscription and isinstance(reply.get("epoch"), str) and isinstance(reply.get("seq"), int):
            subscription._go_live(reply["epoch"], reply["seq"])
        elif kind == "notice" and subscription and reply.get("code") in ("gap", "stale_epoch"):
            subscription._emit(reply["code"], reply)
        elif kind == "unsubscribed" and subscription and not subscription.suspended:
            self._subscriptions.pop(subscription.endpoint, None)
            subscription._end({"code": "revoked", "message": reply.get("reason")})
        elif kind == "moving":
            self._plan_move(reply)
        elif kind == "token_expiring":
            self._spawn(self._refresh_token())
        elif kind == "error":
            self._unsolicited_error(reply, subscription)
        return False

    def _unsolicited_error(self, reply: dict, subscription: Subscription | None) -> None:
        error = StreamgateError(reply["code"], reply["message"], reply.get("endpoint"))
        code = reply["code"]
        if code == "replay_too_large" and subscription:
            # Default reaction: go on live, and say that messages were skipped.
            subscription._emit("gap", {"code": code, "endpoint": reply.get("endpoint"), "message": reply["message"]})
            subscription.position = None
            self._spawn(self._retry_subscribe(subscription, 0))
        elif code in ("resume_unavailable", "replay_failed") and subscription:
            # Default reaction: resume again after a while.
            subscription._emit("retry", error)
            self._spawn(self._retry_subscribe(subscription, self._retry_resume_delay * (0.5 + self._rand())))
        elif code in ("token_expired", "unauthorized"):
            # The subscriptions end next: keep them, to resume with a new token.
            for s in self._subscriptions.values():
                if not s.ended:
                    s.suspended = code
            self._emit("error", error)
            self._spawn(self._refresh_token())
        else:
            self._emit("error", error)

    async def _retry_subscribe(self, subscription: Subscription, delay: float) -> None:
        await asyncio.sleep(delay)
        if not subscription.ended and self._state == "connected":
            await self._send_subscribe(subscription)

    async def _send_subscribe(self, subscription: Subscription) -> None:
        request: dict[str, Any] = {"type": "subscribe", "endpoint": subscription.endpoint}
        if subscription.position is not None:
            request["from"] = {"epoch": subscription.position.epoch, "seq": subscription.position.seq}
        elif subscription.snapshot:
            request["snapshot"] = True
        try:
            reply = await self._request(request)
        except StreamgateError as error:
            if error.code in ("disconnected", "closed"):
                return  # resubscribed on the next node
            self._subscriptions.pop(subscription.endpoint, None)
            subscription._end({"code": error.code, "message": error.message})
            return
        subscription.canonical = reply.get("endpoint")
        subscription.snapshot = False
        subscription._emit("subscribed", reply)

    async def _refresh_token(self) -> None:
        if self._token_provider is None or isinstance(self._token_provider, str):
            return
        try:
            token = await self._token()
            await self._request({"type": "auth", "token": token})
        except StreamgateError as error:
            self._emit("error", error)
            return
        self._emit("token_refreshed")
        for subscription in list(self._subscriptions.values()):
            if subscription.suspended and not subscription.ended:
                subscription.suspended = None
                await self._send_subscribe(subscription)

    async def _unsubscribe(self, subscription: Subscription) -> None:
        if subscription.ended:
            return
        self._subscriptions.pop(subscription.endpoint, None)
        subscription._end({"code": "unsubscribed"})
        if self._state == "connected":
            try:
                await self._request({"type": "unsubscribe", "endpoint": subscription.endpoint})
            except StreamgateError:
                pass

    # ------------------------------------------------------------ requests

    async def _request(self, body: dict[str, Any]) -> dict:
        socket = self._socket
        if socket is None or self._state != "connected":
            raise StreamgateError("disconnected", "not connected")
        request_id = self._next_id
        self._next_id += 1
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await socket.send(json.dumps({**body, "id": request_id}))
            return await asyncio.wait_for(future, self._request_timeout)
        except asyncio.TimeoutError:
            raise StreamgateError("timeout", f"no answer to {body['type']} within {self._request_timeout} s") from None
        except WebSocketException as error:
            raise StreamgateError("disconnected", f"the connection was lost: {error}") from None
        finally:
            self._pending.pop(request_id, None)

    def _fail_pending(self, error: StreamgateError) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
