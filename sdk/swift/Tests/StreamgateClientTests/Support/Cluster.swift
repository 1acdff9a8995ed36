import Foundation
import Synchronization
import Testing

/// A local Streamgate cluster for the SDK's tests: `Tests/Cluster/cluster.py`
/// (a Tansu broker, a topic, gateway nodes and a steady producer with its
/// delivery reports), driven one JSON line at a time, the same driver the
/// JavaScript SDK's tests use.
final class Cluster: Sendable {
    struct Node: Decodable, Sendable {
        let url: String
        let port: Int
    }

    struct Description: Decodable, Sendable {
        let topic: String
        let nodes: [Node]
    }

    let topic: String
    let nodes: [Node]
    private let process: Process
    private let input: FileHandle
    private let output: LineReader

    /// The repository's root, from this file's place in it.
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func start(nodes: Int = 2, partitions: Int = 4, overrides: [String: Any] = [:]) async throws -> Cluster {
        let process = Process()
        process.executableURL = root.appendingPathComponent(".venv/bin/python")
        let overridesJSON = String(decoding: try JSONSerialization.data(withJSONObject: overrides), as: UTF8.self)
        process.arguments = [root.appendingPathComponent("Tests/Cluster/cluster.py").path, "--nodes", "\(nodes)",
                             "--partitions", "\(partitions)", "--overrides", overridesJSON]
        process.currentDirectoryURL = root
        var environment = ProcessInfo.processInfo.environment
        let runtime = root.appendingPathComponent(".runtime/lib").path
        environment["LD_LIBRARY_PATH"] = [runtime, environment["LD_LIBRARY_PATH"]].compactMap { $0 }.joined(separator: ":")
        process.environment = environment
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        let reader = LineReader(stdout.fileHandleForReading)
        let description = try JSONDecoder().decode(Description.self, from: Data(try await reader.next().utf8))
        return Cluster(description, process: process, input: stdin.fileHandleForWriting, output: reader)
    }

    private init(_ description: Description, process: Process, input: FileHandle, output: LineReader) {
        topic = description.topic
        nodes = description.nodes
        self.process = process
        self.input = input
        self.output = output
    }

    /// Sends one command; returns its answer (a JSON object).
    @discardableResult
    func command(_ body: [String: Any]) async throws -> [String: Any] {
        input.write(try JSONSerialization.data(withJSONObject: body) + Data("\n".utf8))
        let line = try await output.next()
        guard let answer = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              answer["ok"] as? Bool == true
        else { throw ClusterError.failed(line) }
        return answer
    }

    /// Stops the producer; per key, the `(offset, value)` of every record Kafka acknowledged, in produce order.
    func stopProducer() async throws -> [String: [(offset: Int64, value: String)]] {
        let answer = try await command(["cmd": "produce_stop"])
        let reports = answer["reports"] as? [String: [[Any]]] ?? [:]
        return reports.mapValues { records in
            records.map { (offset: ($0[1] as? NSNumber)?.int64Value ?? -1, value: $0[2] as? String ?? "") }
        }
    }

    /// Stops everything; records an issue when a gateway's log holds a sanitizer
    /// report. Blocks: it runs in a test's `defer`, once the client is done.
    func stop() {
        input.write(Data(#"{"cmd": "quit"}"#.utf8) + Data("\n".utf8))
        try? input.close()
        let last = try? output.readLineNow()
        process.waitUntilExit()
        let answer = last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        if answer?["ok"] as? Bool != true {
            Issue.record("cluster: \(answer?["error"] ?? last ?? "no answer to quit")")
        }
    }

    enum ClusterError: Error {
        case failed(String)
        case ended
    }
}

/// Reads lines from a pipe on a thread of its own, so that waiting for the
/// cluster never holds one of the (two, on CI) cooperative threads the client runs on.
final class LineReader: Sendable {
    private let handle: FileHandle
    private let buffer = Mutex(Data())

    init(_ handle: FileHandle) { self.handle = handle }

    func next() async throws -> String {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<String, any Error>) in
            Thread.detachNewThread {
                continuation.resume(with: Result { try self.readLineNow() })
            }
        }
    }

    /// The next line, read on the calling thread.
    func readLineNow() throws -> String {
        while true {
            if let line = buffer.withLock({ data -> String? in
                guard let newline = data.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
                defer { data.removeSubrange(data.startIndex...newline) }
                return String(decoding: data[data.startIndex..<newline], as: UTF8.self)
            }) { return line }
            let chunk = handle.availableData
            if chunk.isEmpty { throw Cluster.ClusterError.ended }
            buffer.withLock { $0.append(chunk) }
        }
    }
}

/// Waits (polling every 10 ms) until `condition()` holds; throws naming `what` after `timeout`.
func until(_ what: String, timeout: Duration = .seconds(20), _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        if ContinuousClock.now > deadline { throw WaitError.timedOut(what) }
        try await Task.sleep(for: .milliseconds(10))
    }
}

enum WaitError: Error, CustomStringConvertible {
    case timedOut(String)
    var description: String {
        switch self { case .timedOut(let what): "timed out waiting for \(what)" }
    }
}

/// Values appended from several tasks and read by the test.
final class Collected<Value: Sendable>: Sendable {
    private let values = Mutex<[Value]>([])
    func append(_ value: Value) { values.withLock { $0.append(value) } }
    var all: [Value] { values.withLock { $0 } }
    var count: Int { values.withLock { $0.count } }
}
