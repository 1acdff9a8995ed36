import CFanout
import Foundation
import Synchronization
import Testing

@testable import streamgate

/// A `FanoutPort` that does what one C loop does with its command queue,
/// synchronously and in call order, and records what each connection would
/// receive: the control plane's unit tests read a connection's stream from it.
final class FakeFanout: FanoutPort {
    /// What one connection received or had done to it, in order.
    enum Event: Equatable, CustomStringConvertible {
        case text(String)
        case delivery(endpoint: String, seq: Int64, snapshot: Bool)
        case subscribed(String)
        case unsubscribed(String)
        case closed(code: UInt16, reason: String)

        var description: String {
            switch self {
            case .text(let t): "text \(t)"
            case .delivery(let e, let seq, let snapshot): "delivery \(e)#\(seq)\(snapshot ? " (snapshot)" : "")"
            case .subscribed(let e): "subscribe \(e)"
            case .unsubscribed(let e): "unsubscribe \(e)"
            case .closed(let code, let reason): "close \(code) \(reason)"
            }
        }
    }

    private struct State {
        var events: [cf_conn_id: [Event]] = [:]
        var subscribers: [String: Set<cf_conn_id>] = [:]
        var closed: Set<cf_conn_id> = []
        var ready = false
    }

    private let state = Mutex(State())

    /// Everything `conn` received so far.
    func events(_ conn: cf_conn_id) -> [Event] { state.withLock { $0.events[conn] ?? [] } }
    /// The text messages `conn` received so far.
    func texts(_ conn: cf_conn_id) -> [String] {
        events(conn).compactMap { if case .text(let t) = $0 { t } else { nil } }
    }
    /// The deliveries `conn` received so far: (endpoint, seq).
    func deliveries(_ conn: cf_conn_id) -> [(endpoint: String, seq: Int64)] {
        events(conn).compactMap { if case .delivery(let e, let s, _) = $0 { (e, s) } else { nil } }
    }
    func isSubscribed(_ conn: cf_conn_id, to endpoint: String) -> Bool {
        state.withLock { $0.subscribers[endpoint]?.contains(conn) == true }
    }
    var isReady: Bool { state.withLock { $0.ready } }

    // MARK: FanoutPort

    func publish(batch frames: UnsafeBufferPointer<OpaquePointer?>) {
        for case let frame? in frames {
            if let text = Self.text(of: frame) {
                // A notice about an endpoint, fanned out like its deliveries (routed by its "endpoint").
                cf_frame_release(frame)
                let endpoint = (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?["endpoint"]
                    as? String ?? ""
                state.withLock { s in
                    for conn in s.subscribers[endpoint] ?? [] where !s.closed.contains(conn) {
                        s.events[conn, default: []].append(.text(text))
                    }
                }
                continue
            }
            let parsed = Self.parse(frame)
            cf_frame_release(frame)
            state.withLock { s in
                for conn in s.subscribers[parsed.endpoint] ?? [] where !s.closed.contains(conn) {
                    s.events[conn, default: []].append(
                        .delivery(endpoint: parsed.endpoint, seq: parsed.seq, snapshot: parsed.snapshot))
                }
            }
        }
    }

    func subscribe(_ conn: cf_conn_id, to endpoint: String) {
        record(conn, .subscribed(endpoint)) { $0.subscribers[endpoint, default: []].insert(conn) }
    }

    func unsubscribe(_ conn: cf_conn_id, from endpoint: String) {
        record(conn, .unsubscribed(endpoint)) { _ = $0.subscribers[endpoint]?.remove(conn) }
    }

    func sendText(_ conn: cf_conn_id, _ text: String) { record(conn, .text(text)) }

    func send(_ conn: cf_conn_id, frame: OpaquePointer) {
        let parsed = Self.parse(frame)
        cf_frame_release(frame)
        record(conn, .delivery(endpoint: parsed.endpoint, seq: parsed.seq, snapshot: parsed.snapshot))
    }

    func close(_ conn: cf_conn_id, code: UInt16, reason: String) {
        record(conn, .closed(code: code, reason: reason)) { s in
            s.closed.insert(conn)
            for endpoint in s.subscribers.keys { s.subscribers[endpoint]?.remove(conn) }
        }
    }

    func setReady(_ ready: Bool) { state.withLock { $0.ready = ready } }

    /// Like a loop, a closed connection takes nothing more.
    private func record(_ conn: cf_conn_id, _ event: Event, _ apply: (inout State) -> Void = { _ in }) {
        state.withLock { s in
            guard !s.closed.contains(conn) else { return }
            s.events[conn, default: []].append(event)
            apply(&s)
        }
    }

    /// The endpoint, seq and snapshot flag of a delivery frame, read with
    /// the tests' frame decoder (`decodeFrame`, the C codec's header parser).
    /// The text of a text frame; nil for a binary one.
    static func text(of frame: OpaquePointer) -> String? {
        guard let decoded = try? decodeFrame(frame), decoded.opcode == UInt8(CF_WS_OP_TEXT) else { return nil }
        return String(decoding: decoded.body, as: UTF8.self)
    }

    static func parse(_ frame: OpaquePointer) -> (endpoint: String, seq: Int64, snapshot: Bool) {
        guard let body = (try? decodeFrame(frame))?.body, body.count >= DeliveryFrame.fixedHeaderBytes else {
            Issue.record("the fake fan-out was handed a frame that is not a delivery")
            return ("", -1, false)
        }
        let endpointLength = Int(bigEndian(body[2..<4], as: UInt16.self))
        let start = DeliveryFrame.fixedHeaderBytes
        let endpoint = String(decoding: body[start..<(start + endpointLength)], as: UTF8.self)
        return (endpoint, bigEndian(body[6..<14], as: Int64.self), body[1] & DeliveryFrame.flagSnapshot != 0)
    }
}
