// client_protocol.swift — libFuzzer harness for the client protocol's control
// messages (Sources/Host/Sessions/ClientProtocol.swift): `ClientProtocol.parse` on
// arbitrary bytes, then every reply the host would build from what it parsed
// (or from the error), each checked to be valid JSON (JSONSerialization)
// with the right "type", the request's "id" when the parser found one, and
// string fields that read back as the values that went in.
//
// It also compares the id with an independent reading of the request
// (JSONSerialization): when that finds a JSON object whose "id" is a string
// or a number, the parser must report the same id, in its request or in
// its error, so the client can match the reply to the request.
//
// Built by scripts/fuzz with swiftc (not SwiftPM): this file and
// ClientProtocol.swift, linked with the StreamgatePluginAPI sources built as
// their own module (as in the real build: `import StreamgatePluginAPI`).
import Foundation
import StreamgatePluginAPI

/// Fails the run with a message (libFuzzer saves the input on the trap).
func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
           line: UInt = #line) {
    if !condition() {
        FileHandle.standardError.write(Data("invariant failed (line \(line)): \(message())\n".utf8))
        abort()
    }
}

/// A JSON value as JSONSerialization reads it, compared with a parsed id.
/// Numbers may differ in the last digits: Foundation's JSONSerialization on
/// Linux reads some long literals inexactly (1.2345678901203765e+19 as
/// ...763e+19, 1.2691357802469136e+91 as ...127e+91), so this is only "the
/// same id"; checkReply compares the reply's id exactly, with JSONDecoder.
func sameID(_ value: Any?, _ id: JSONValue?) -> Bool {
    switch id {
    case nil: return value == nil
    case .string(let s)?: return (value as? String) == s
    case .number(let n)?:
        guard let number = value as? NSNumber, !isBool(number) else { return false }
        let m = number.doubleValue
        return m == n || abs(m - n) <= 1e-12 * max(abs(m), abs(n))
    default: return false // the parser only accepts string and number ids
    }
}

func isBool(_ n: NSNumber) -> Bool {
    // JSONSerialization gives true/false as NSNumber too; on Linux their
    // Objective-C type is "c" (char), like Bool.
    String(cString: n.objCType) == "c"
}

/// Checks one reply: a JSON object, its type, its id, and some string fields.
func checkReply(_ text: String, type: String, id: JSONValue?, strings: [String: String] = [:]) {
    let object: Any
    do {
        object = try JSONSerialization.jsonObject(with: Data(text.utf8))
    } catch {
        check(false, "reply is not valid JSON: \(text.debugDescription)")
        return
    }
    guard let reply = object as? [String: Any] else {
        check(false, "reply is not a JSON object: \(text.debugDescription)")
        return
    }
    check(reply["type"] as? String == type, "reply type is not \(type): \(text.debugDescription)")
    check(sameID(reply["id"], id), "reply id differs from \(String(describing: id)): \(text.debugDescription)")
    // Exactly the id of the request, read back the way the host reads JSON.
    guard case .object(let fields)? = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) else {
        check(false, "JSONDecoder cannot read the reply back: \(text.debugDescription)")
        return
    }
    check(fields["id"] == id, "reply id is not exactly \(String(describing: id)): \(text.debugDescription)")
    // String fields through JSONDecoder too: corelibs-foundation's
    // JSONSerialization drops U+FEFF inside strings (found by this harness:
    // a request type holding a BOM), so it cannot vouch for text exactly.
    for (key, value) in strings {
        check(fields[key] == .string(value), "reply field \(key) is not \(value.debugDescription): \(text.debugDescription)")
    }
}

/// The id an independent JSON reader finds, if the input is an object with
/// a string or (non-boolean) number "id"; `.none` when it cannot tell.
enum IndependentID {
    case none
    case found(Any)
}

func independentID(_ bytes: UnsafeRawBufferPointer) -> IndependentID {
    guard let object = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]),
          let fields = object as? [String: Any], let id = fields["id"]
    else { return .none }
    // With a key given twice, JSON readers may keep either value (RFC 8259
    // leaves it open; JSONDecoder keeps the first, JSONSerialization the
    // last): no comparison then.
    if topLevelMembers(bytes) != fields.count { return .none }
    if id is String { return .found(id) }
    if let n = id as? NSNumber, !isBool(n) { return .found(n) }
    return .none
}

/// How many members the top-level object of valid JSON text lists (counting
/// the commas at depth 1 outside strings), duplicates included.
func topLevelMembers(_ bytes: UnsafeRawBufferPointer) -> Int {
    var depth = 0, commas = 0, inString = false, escaped = false, empty = true
    for b in bytes {
        if inString {
            if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
            continue
        }
        switch b {
        case UInt8(ascii: "\""): inString = true; if depth == 1 { empty = false }
        case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
        case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
        case UInt8(ascii: ","): if depth == 1 { commas += 1 }
        default: break
        }
    }
    return empty ? 0 : commas + 1
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let independent = independentID(bytes)
    let request: ClientProtocol.Request
    do {
        request = try ClientProtocol.parse(bytes)
    } catch {
        // Every error becomes an error frame carrying the id the parser found.
        check(!error.message.isEmpty, "empty error message")
        checkReply(ClientProtocol.error(error.code, error.message, id: error.id), type: "error", id: error.id,
                   strings: ["code": error.code.rawValue, "message": error.message])
        // If another reader saw an object with a usable id and the parser got as
        // far as the fields, it must have found that id too.
        if case .found(let id) = independent, error.message != "a request must be a JSON object" {
            check(sameID(id, error.id), "error lost the request's id \(id): \(error)")
        }
        return 0
    }

    let id: JSONValue?
    switch request {
    case .subscribe(let endpoint, let requestID, let options):
        id = requestID
        checkReply(ClientProtocol.subscribed(endpoint: endpoint, id: id), type: "subscribed", id: id,
                   strings: ["endpoint": endpoint])
        checkReply(ClientProtocol.error(.forbidden, "not allowed", endpoint: endpoint, id: id), type: "error", id: id,
                   strings: ["endpoint": endpoint, "code": "forbidden"])
        if let resume = options.resume {
            // The parser promises an integer seq from -1 to 2^53 and a non-empty epoch.
            check(resume.seq >= -1 && resume.seq < 9_007_199_254_740_992, "seq out of range: \(resume.seq)")
            check(!resume.epoch.isEmpty, "empty epoch")
            checkReply(ClientProtocol.staleEpoch(endpoint: endpoint, epoch: resume.epoch, current: nil),
                       type: "notice", id: nil, strings: ["endpoint": endpoint, "epoch": resume.epoch])
            checkReply(ClientProtocol.gap(endpoint: endpoint, epoch: resume.epoch, fromSeq: resume.seq + 1,
                                          toSeq: resume.seq + 10, reason: "retention"),
                       type: "notice", id: nil, strings: ["endpoint": endpoint, "epoch": resume.epoch])
            checkReply(ClientProtocol.replayed(endpoint: endpoint, count: 3, source: "cache"), type: "replayed",
                       id: nil, strings: ["endpoint": endpoint])
        }
    case .unsubscribe(let endpoint, let requestID):
        id = requestID
        checkReply(ClientProtocol.unsubscribed(endpoint: endpoint, id: id), type: "unsubscribed", id: id,
                   strings: ["endpoint": endpoint])
        checkReply(ClientProtocol.revoked(endpoint: endpoint, reason: "rights changed"), type: "unsubscribed",
                   id: nil, strings: ["endpoint": endpoint])
    case .auth(let token, let requestID):
        id = requestID
        check(!token.isEmpty, "empty token accepted")
        // The token stands in for a subject: any string must survive escaping.
        let identity = Identity(subject: token, rights: .none, expiresAt: nil)
        checkReply(ClientProtocol.authenticated(identity: identity, id: id), type: "authenticated", id: id,
                   strings: ["subject": token])
        checkReply(ClientProtocol.welcome(identity: identity), type: "welcome", id: nil,
                   strings: ["subject": token, "protocol": ClientProtocol.name])
        checkReply(ClientProtocol.welcome(identity: identity, traceContext: true), type: "welcome", id: nil,
                   strings: ["subject": token, "protocol": ClientProtocol.name])
        checkReply(ClientProtocol.moving(reconnectWithinMs: token.utf8.count), type: "moving", id: nil,
                   strings: ["reason": "draining"])
        checkReply(ClientProtocol.error(.unauthorized, "token rejected: \(token)", id: id), type: "error", id: id)
    case .publish(let endpoint, let payload, let traceParent, let requestID):
        id = requestID
        _ = payload.count
        _ = traceParent?.utf8.count  // any string: the gateway checks its shape before it becomes a header
        checkReply(ClientProtocol.published(endpoint: endpoint, partition: 3, offset: 1041, id: id),
                   type: "published", id: id, strings: ["endpoint": endpoint])
        checkReply(ClientProtocol.error(.publishFailed, "broker said no", endpoint: endpoint, id: id), type: "error",
                   id: id, strings: ["endpoint": endpoint])
    case .ping(let requestID):
        id = requestID
        checkReply(ClientProtocol.pong(id: id), type: "pong", id: id)
    }
    if case .found(let found) = independent {
        check(sameID(found, id), "request id \(String(describing: id)) differs from \(found)")
    }
    return 0
}
