import Foundation
import NIOCore
@testable import StreamgateClient
import Testing

/// The SDK's pure parts: the delivery frame reader, the backoff, the request and
/// reply shapes, and the configuration's checks.
@Suite("Swift SDK units")
struct UnitTests {
    /// A delivery frame laid out as `docs/protocol.md` says, written independently of the reader.
    static func frame(kind: UInt8 = 1, flags: UInt8 = 0, endpoint: String, epoch: String, seq: UInt64,
                      timestamp: Int64, traceParent: String? = nil, payload: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(kind)
        buffer.writeInteger(flags)
        buffer.writeInteger(UInt16(endpoint.utf8.count))
        buffer.writeInteger(UInt16(epoch.utf8.count))
        buffer.writeInteger(seq)
        buffer.writeInteger(timestamp)
        buffer.writeString(endpoint)
        buffer.writeString(epoch)
        if let traceParent {
            buffer.writeInteger(UInt8(traceParent.utf8.count))
            buffer.writeString(traceParent)
        }
        buffer.writeBytes(payload)
        return buffer
    }

    @Test func readsTheTraceContextAndSkipsItBeforeThePayload() throws {
        let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let frame = Self.frame(flags: 2, endpoint: "/t/k", epoch: "e", seq: 7, timestamp: 0, traceParent: trace,
                               payload: Array("value".utf8))
        let message = try #require(DeliveryFrame.parse(frame))
        #expect(message.traceParent == trace && message.text == "value" && !message.isSnapshot)
        #expect(try #require(DeliveryFrame.parse(Self.frame(endpoint: "/t/k", epoch: "e", seq: 7, timestamp: 0,
                                                            payload: [1]))).traceParent == nil)
        // A trace context longer than what is left is a broken frame, not a payload.
        var cut = Self.frame(flags: 2, endpoint: "/t/k", epoch: "e", seq: 7, timestamp: 0, traceParent: trace, payload: [])
        cut.moveWriterIndex(to: cut.writerIndex - 1)
        #expect(DeliveryFrame.parse(cut) == nil)
    }

    @Test func readsADeliveryFrame() throws {
        let frame = Self.frame(flags: 1, endpoint: "/scores/live/nba", epoch: "9f4714b77c2a4c78", seq: 1041,
                               timestamp: 1_700_000_000_123, payload: [0, 1, 255])
        let message = try #require(DeliveryFrame.parse(frame))
        #expect(message == Message(endpoint: "/scores/live/nba", epoch: "9f4714b77c2a4c78", seq: 1041,
                                   timestamp: 1_700_000_000_123, isSnapshot: true, payload: [0, 1, 255]))
        #expect(message.position == Position(epoch: "9f4714b77c2a4c78", seq: 1041))
        #expect(message.text == nil)  // not UTF-8
    }

    @Test func readsAnEmptyPayloadAndAnUnknownTimestamp() throws {
        let message = try #require(DeliveryFrame.parse(Self.frame(endpoint: "/t/k", epoch: "e", seq: 0, timestamp: -1, payload: [])))
        #expect(message.payload.isEmpty && message.text == "" && message.timestamp == -1 && !message.isSnapshot)
    }

    @Test func ignoresOtherKindsAndShortFrames() {
        #expect(DeliveryFrame.parse(Self.frame(kind: 2, endpoint: "/t/k", epoch: "e", seq: 1, timestamp: 0, payload: [1])) == nil)
        var cut = Self.frame(endpoint: "/t/k", epoch: "epoch", seq: 1, timestamp: 0, payload: [])
        cut.moveWriterIndex(to: cut.writerIndex - 2)  // the epoch is cut short
        #expect(DeliveryFrame.parse(cut) == nil)
        #expect(DeliveryFrame.parse(ByteBuffer(bytes: [1, 0, 0])) == nil)
    }

    @Test func decodesJSONPayloads() throws {
        struct Score: Decodable, Equatable { let home: Int }
        let message = Message(endpoint: "/t/k", epoch: "e", seq: 1, timestamp: 0, isSnapshot: false, payload: Array(#"{"home": 3}"#.utf8))
        #expect(try message.decode(Score.self) == Score(home: 3))
    }

    @Test func backoffDoublesUpToTheCapWithFullJitter() {
        let delays = (0..<8).map { Backoff.delay(attempt: $0, minimum: .milliseconds(100), maximum: .seconds(2), jitter: false) }
        #expect(delays == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800),
                           .milliseconds(1600), .seconds(2), .seconds(2), .seconds(2)])
        #expect(Backoff.delay(attempt: 3, minimum: .milliseconds(100), maximum: .seconds(2), jitter: true, random: { 0.25 }) == .milliseconds(200))
        #expect(Backoff.delay(attempt: 1_000, minimum: .milliseconds(100), maximum: .seconds(10), jitter: false) == .seconds(10))
        for attempt in 0..<20 {
            let delay = Backoff.delay(attempt: attempt, minimum: .milliseconds(100), maximum: .seconds(2), jitter: true)
            #expect(delay >= .zero && delay <= .seconds(2))
        }
    }

    @Test func requestsLeaveOutAbsentFields() throws {
        let resume = Request(type: "subscribe", id: 7, endpoint: "/t/k", from: Position(epoch: "e", seq: -1))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(resume.json().utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["type", "id", "endpoint", "from"])
        #expect((object["from"] as? [String: Any])?["seq"] as? Int == -1)
        let publish = Request(type: "publish", endpoint: "/t/k", payloadBase64: "AP8=")
        #expect(publish.json().contains(#""payload_base64":"AP8=""#))
    }

    @Test func repliesMatchOnlyIntegerIds() throws {
        let pong = try #require(Reply.parse(#"{"type": "pong", "id": "streamgate-sdk-ping"}"#))
        #expect(pong.type == "pong" && pong.id == nil)
        let published = try #require(Reply.parse(#"{"type": "published", "endpoint": "/t/k", "partition": 2, "offset": 9007199254740993, "id": 4}"#))
        #expect(published.id == 4 && published.partition == 2 && published.offset == 9_007_199_254_740_993)
        let gap = try #require(Reply.parse(#"{"type": "notice", "code": "gap", "endpoint": "/t/k", "epoch": "e", "from_seq": 3, "to_seq": 8, "message": "gone"}"#))
        #expect(gap.fromSeq == 3 && gap.toSeq == 8 && gap.id == nil)
        let welcome = try #require(Reply.parse(#"{"type": "welcome", "protocol": "streamgate.v1", "subject": "s", "expires_at": null, "later_field": [1]}"#))
        #expect(welcome.subject == "s" && welcome.expiresAt == nil)
        let error = try #require(Reply.parse(#"{"type": "error", "code": "forbidden", "message": "no", "endpoint": "/t/k", "id": 1}"#))
        #expect(error.error == StreamgateError(code: .forbidden, message: "no", endpoint: "/t/k"))
        #expect(Reply.parse("not json") == nil && Reply.parse(#"{"no_type": 1}"#) == nil)
    }

    @Test func configurationProblemsNameTheSetting() throws {
        let none = #expect(throws: StreamgateError.self) { try StreamgateClient(configuration: .init(urls: [])) }
        #expect(none?.code == .badOptions && none?.message.hasPrefix("urls:") == true)
        let http = #expect(throws: StreamgateError.self) { try StreamgateClient(configuration: .init(urls: ["http://127.0.0.1:1/ws"])) }
        #expect(http?.message.contains("not a ws:// or wss:// URL") == true)
        var delays = StreamgateClient.Configuration(urls: ["ws://127.0.0.1:1/ws"])
        delays.maxReconnectDelay = .milliseconds(10)
        let backoff = #expect(throws: StreamgateError.self) { try StreamgateClient(configuration: delays) }
        #expect(backoff?.message.contains("minReconnectDelay") == true)
    }

    @Test func aClientRunsOnceAndCloseEndsEverything() async throws {
        // Port 1 on loopback refuses: the client keeps retrying until closed.
        var configuration = StreamgateClient.Configuration(urls: ["ws://127.0.0.1:1/ws"])
        configuration.minReconnectDelay = .milliseconds(10)
        let client = try StreamgateClient(configuration: configuration)
        let subscription = client.subscribe("/t/k")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.run() }
            group.addTask {
                let waiting = await #expect(throws: StreamgateError.self) { try await client.connected() }
                #expect(waiting?.code == .closed)
            }
            try await until("a reconnect attempt") { client.state == .reconnecting }
            let twice = await #expect(throws: StreamgateError.self) { try await client.run() }
            #expect(twice?.code == .badOptions)
            await client.close()
            try await group.waitForAll()
        }
        #expect(client.state == .closed && subscription.isEnded)
        var iterator = subscription.makeAsyncIterator()
        #expect(try await iterator.next() == nil)
    }
}
