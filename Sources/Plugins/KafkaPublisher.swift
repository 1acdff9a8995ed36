import CRdKafka
import Foundation
import StreamgatePluginAPI
import Synchronization

/// The Kafka source's producer, for records clients publish: idempotent
/// (`enable.idempotence`: retries never reorder or duplicate, so records of
/// one key keep their order), acknowledged by all in-sync replicas, created
/// on the first publish. A thread of its own serves delivery reports, each
/// of which completes exactly one publish.
final class KafkaPublisher: Sendable {
    /// @unchecked Sendable: librdkafka producer handles are thread-safe by
    /// its contract; the thread is only cancelled and joined.
    private struct Producer: @unchecked Sendable {
        let handle: OpaquePointer
        let thread: Thread
    }

    /// A publish's completion, carried through librdkafka as the message opaque.
    private final class Pending: Sendable {
        let completion: @Sendable (Result<PublishReceipt, PublishError>) -> Void
        init(_ completion: @escaping @Sendable (Result<PublishReceipt, PublishError>) -> Void) { self.completion = completion }
    }

    static let defaults: [String: String] = [
        "enable.idempotence": "true",
        "acks": "all",
        "linger.ms": "2",
        "message.timeout.ms": "10000",
    ]

    private let brokers: String
    private let properties: [String: String]
    private let keyPrefix: String
    private let producer = Mutex<Producer?>(nil)
    private let finished = Atomic<Bool>(false)

    init(brokers: String, properties: [String: String], keyPrefix: String) {
        self.brokers = brokers
        self.properties = properties
        self.keyPrefix = keyPrefix
    }

    func publish(_ request: PublishRequest, completion: @escaping @Sendable (Result<PublishReceipt, PublishError>) -> Void) {
        guard !finished.load(ordering: .relaxed) else {
            return completion(.failure(PublishError("the gateway is shutting down")))
        }
        let handle: OpaquePointer
        do {
            handle = try ready()
        } catch {
            return completion(.failure(error))
        }
        let pending = Unmanaged.passRetained(Pending(completion)).toOpaque()
        let names = request.headers.map { strdup($0.name) }
        defer { names.forEach { free($0) } }
        let error: OpaquePointer? = request.key.withUnsafeBytes { key in
            request.value.withUnsafeBytes { value in
                withHeaderPointers(request.headers) { values, sizes in
                    names.map { UnsafePointer($0) }.withUnsafeBufferPointer { namePointers in
                        streamgate_produce(handle, request.topic, key.baseAddress, key.count, value.baseAddress, value.count,
                                           namePointers.baseAddress, values, sizes, request.headers.count, pending)
                    }
                }
            }
        }
        if let error {
            Unmanaged<Pending>.fromOpaque(pending).release()
            let reason = String(cString: rd_kafka_error_string(error))
            rd_kafka_error_destroy(error)
            completion(.failure(PublishError(reason)))
        }
    }

    func finish() {
        finished.store(true, ordering: .relaxed)
        guard let p = producer.withLock({ current -> Producer? in defer { current = nil }; return current }) else { return }
        rd_kafka_flush(p.handle, 5_000)
        p.thread.cancel()
        while !p.thread.isFinished { usleep(10_000) }
        rd_kafka_destroy(p.handle)
    }

    /// The producer, created on first use.
    private func ready() throws(PublishError) -> OpaquePointer {
        try producer.withLock { current throws(PublishError) -> OpaquePointer in
            if let current { return current.handle }
            let conf: OpaquePointer
            do {
                conf = try KafkaClientConfiguration.make(
                    brokers: brokers, properties: Self.defaults.merging(properties) { _, mine in mine },
                    keyPrefix: keyPrefix, base: [:])
            } catch {
                throw PublishError("cannot configure the producer: \(error)")
            }
            rd_kafka_conf_set_dr_msg_cb(conf) { _, message, _ in
                guard let message, let opaque = message.pointee._private else { return }
                let pending = Unmanaged<Pending>.fromOpaque(opaque).takeRetainedValue()
                let m = message.pointee
                if m.err == RD_KAFKA_RESP_ERR_NO_ERROR {
                    pending.completion(.success(PublishReceipt(partition: m.partition, offset: m.offset)))
                } else {
                    pending.completion(.failure(PublishError(String(cString: rd_kafka_err2str(m.err)))))
                }
            }
            var errstr = [CChar](repeating: 0, count: 512)
            guard let handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errstr, errstr.count) else {
                rd_kafka_conf_destroy(conf)
                throw PublishError("cannot create the producer: \(String(cString: errstr))")
            }
            let box = HandleBox(handle)
            let thread = Thread {
                while !Thread.current.isCancelled { rd_kafka_poll(box.handle, 100) }
            }
            thread.name = "kafka-publisher"
            thread.start()
            current = Producer(handle: handle, thread: thread)
            return handle
        }
    }
}

/// A librdkafka handle handed to the poll thread (thread-safe by librdkafka's contract).
private final class HandleBox: @unchecked Sendable {
    let handle: OpaquePointer
    init(_ handle: OpaquePointer) { self.handle = handle }
}

/// Calls `body` with C arrays of the headers' value pointers and sizes.
private func withHeaderPointers<R>(_ headers: [PublishHeader],
                                   _ body: (UnsafePointer<UnsafeRawPointer?>?, UnsafePointer<Int>?) -> R) -> R {
    let copies: [UnsafeMutableRawPointer?] = headers.map { header in
        let p = malloc(max(1, header.value.count))
        header.value.withUnsafeBytes { if let base = $0.baseAddress { p?.copyMemory(from: base, byteCount: $0.count) } }
        return p
    }
    defer { copies.forEach { free($0) } }
    let values = copies.map { UnsafeRawPointer($0) }
    let sizes = headers.map { $0.value.count }
    return values.withUnsafeBufferPointer { v in sizes.withUnsafeBufferPointer { s in body(v.baseAddress, s.baseAddress) } }
}
