import Foundation
import StreamgatePluginAPI
import Synchronization

@testable import streamgate

/// An authorizer over a table of tokens that tests edit: removing or
/// changing a token bumps the revision, as an edited tokens file does.
final class TokenTableAuthorizer: Authorizer {
    private let state = Mutex<(tokens: [String: Identity], revision: UInt64)>(([:], 1))
    /// Authentication waits until this is true (to hold requests back).
    let open = Atomic<Bool>(true)
    /// An authentication of this token, once it has looked it up, waits
    /// before answering (a decision made on a state that changes meanwhile).
    let heldToken = Mutex<String?>(nil)
    /// How many tokens have been looked up.
    let lookups = Atomic<Int>(0)

    init(_ tokens: [String: Identity]) { state.withLock { $0.tokens = tokens } }

    func set(_ token: String, _ identity: Identity?) {
        state.withLock {
            $0.tokens[token] = identity
            $0.revision += 1
        }
    }

    func authenticate(_ credentials: Credentials) async -> AuthenticationResult {
        while !open.load(ordering: .acquiring) { try? await Task.sleep(for: .milliseconds(1)) }
        guard let token = credentials.token else { return .abstain }
        let answer = state.withLock { $0.tokens[token] }.map { .identified($0) } ?? AuthenticationResult.denied(reason: "unknown token")
        lookups.add(1, ordering: .releasing)
        while heldToken.withLock({ $0 == token }) { try? await Task.sleep(for: .milliseconds(1)) }
        return answer
    }

    func revision() async -> UInt64 { state.withLock { $0.revision } }
}

/// One Kafka partition in memory (topic `t`, partition 0, epoch `E`): tests
/// append records and route them live; resumes older than the cache read it
/// again on the replayer's threads, as the Kafka source does (polling for
/// records appended meanwhile), and publishes append to it.
final class MemoryLogSource: ReplayableSource, PublishingSource {
    struct Record: Sendable {
        let offset: Int64
        let key: String
        let value: [UInt8]
    }

    static let topic = "t"
    static let epoch = "E"

    private let log = Mutex<[Record]>([])
    /// Records a publish produces (and what was published).
    let published = Mutex<[PublishRequest]>([])

    var topics: [String] { [Self.topic] }
    func run(delivering sink: any MessageSink) async throws {}

    /// Appends a record with the next offset and returns it.
    func append(key: String, value: [UInt8] = Array("v".utf8)) -> Record {
        log.withLock { log in
            let record = Record(offset: Int64(log.count), key: key, value: value)
            log.append(record)
            return record
        }
    }

    var records: [Record] { log.withLock { $0 } }

    /// Hands `records` to `sink` as one source batch.
    static func route(_ records: [Record], into sink: any MessageSink) {
        for record in records {
            let key = Array(record.key.utf8)
            key.withUnsafeBytes { k in
                record.value.withUnsafeBytes { v in
                    sink.deliver(SourceRecord(topic: topic, partition: 0, offset: record.offset, timestampMs: 0,
                                              epoch: epoch, key: k, value: v))
                }
            }
        }
        sink.endOfBatch()
    }

    func replay(_ request: ReplayRequest, timeoutMs: Int, reader: any ReplayReader) throws(ReplayError) -> ReplayOutcome {
        guard request.epoch == Self.epoch else { return .staleEpoch(current: Self.epoch) }
        reader.logStarts(at: 0)
        var next = request.fromOffset
        let deadline = Date().addingTimeInterval(Double(timeoutMs) / 1000)
        while Date() < deadline {
            let available = log.withLock { Array($0.dropFirst(Int(next))) }
            for record in available {
                let key = Array(record.key.utf8)
                let more = key.withUnsafeBytes { k in
                    record.value.withUnsafeBytes { v in
                        reader.read(SourceRecord(topic: Self.topic, partition: 0, offset: record.offset, timestampMs: 0,
                                                 epoch: Self.epoch, key: k, value: v))
                    }
                }
                if !more { return .stopped }
                next = record.offset + 1
            }
            if !reader.caughtUp(nextOffset: next) { return .stopped }
            usleep(500)
        }
        throw ReplayError("timed out")
    }

    func publish(_ request: PublishRequest, completion: @escaping @Sendable (Result<PublishReceipt, PublishError>) -> Void) {
        published.withLock { $0.append(request) }
        let record = append(key: String(decoding: request.key, as: UTF8.self), value: request.value)
        completion(.success(PublishReceipt(partition: 0, offset: record.offset)))
    }

    func finishPublishing() {}
}
