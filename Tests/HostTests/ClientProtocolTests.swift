import Foundation
import StreamgatePluginAPI
import Testing

@testable import streamgate

func parseRequest(_ text: String) throws -> ClientProtocol.Request {
    let bytes = Array(text.utf8)
    return try bytes.withUnsafeBytes { try ClientProtocol.parse($0) }
}

func requestError(_ text: String) -> ClientProtocol.RequestError? {
    let bytes = Array(text.utf8)
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
    defer { buffer.deallocate() }
    buffer.copyBytes(from: bytes)
    do {
        _ = try ClientProtocol.parse(UnsafeRawBufferPointer(buffer))
        return nil
    } catch {
        return error
    }
}

func jsonObject(_ text: String) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(text.utf8))
    return try #require(object as? [String: Any], "\(text) is not a JSON object")
}

@Suite("ClientProtocol")
struct ClientProtocolTests {
    @Test func subscribeWithStringId() throws {
        let r = try parseRequest(#"{"type":"subscribe","endpoint":"/scores/live","id":"a1"}"#)
        #expect(r == .subscribe(endpoint: "/scores/live", id: .string("a1")))
    }

    @Test func unsubscribeWithNumberId() throws {
        let r = try parseRequest(#"{"type":"unsubscribe","endpoint":"/t/k","id":42}"#)
        #expect(r == .unsubscribe(endpoint: "/t/k", id: .number(42)))
    }

    @Test(arguments: [0, 1, -3, 7.5])
    func numericIdsAreNumbers(id: Double) throws {
        let r = try parseRequest(#"{"type":"subscribe","endpoint":"/t/k","id":\#(id)}"#)
        #expect(r == .subscribe(endpoint: "/t/k", id: .number(id)))
    }

    @Test func idIsOptional() throws {
        let r = try parseRequest(#"  {"endpoint":"/t/k","type":"subscribe"}  "#)
        #expect(r == .subscribe(endpoint: "/t/k", id: nil))
    }

    @Test(arguments: ["", "not json", "{", "{'type':'subscribe'}", "{\"type\" \"subscribe\"}"])
    func notJSON(text: String) throws {
        let e = try #require(requestError(text))
        #expect(e.code == .badRequest)
        #expect(e.id == nil)
    }

    @Test(arguments: ["[]", "[{\"type\":\"subscribe\"}]", "\"subscribe\"", "42", "null", "true"])
    func notAnObject(text: String) throws {
        let e = try #require(requestError(text))
        #expect(e.code == .badRequest)
        #expect(e.message.contains("JSON object"))
    }

    @Test(arguments: [
        #"{"type":"subscribe","id":1}"#,
        #"{"type":"subscribe","endpoint":5,"id":1}"#,
        #"{"type":"unsubscribe","endpoint":null,"id":1}"#,
    ])
    func missingEndpoint(text: String) throws {
        let e = try #require(requestError(text))
        #expect(e.code == .badRequest)
        #expect(e.message.contains("endpoint"))
        #expect(e.id == .number(1), "the error echoes the id")
    }

    @Test(arguments: [#"true"#, #"null"#, #"[1]"#, #"{"a":1}"#, #"false"#])
    func idOfWrongType(id: String) throws {
        let e = try #require(requestError(#"{"type":"subscribe","endpoint":"/t/k","id":\#(id)}"#))
        #expect(e.code == .badRequest)
        #expect(e.message.contains("\"id\""))
    }

    @Test func missingType() throws {
        let e = try #require(requestError(#"{"endpoint":"/t/k","id":"x"}"#))
        #expect(e.code == .badRequest)
        #expect(e.id == .string("x"))
        let e2 = try #require(requestError(#"{"type":1,"endpoint":"/t/k"}"#))
        #expect(e2.code == .badRequest)
    }

    @Test func pingIsAnsweredWithPongCarryingItsId() throws {
        var text = #"{"type":"ping","id":"live-1"}"#
        let request = try text.withUTF8 { try ClientProtocol.parse(UnsafeRawBufferPointer($0)) }
        #expect(request == .ping(id: .string("live-1")))
        #expect(ClientProtocol.pong(id: .string("live-1")) == #"{"type":"pong","id":"live-1"}"#)
        #expect(ClientProtocol.pong(id: nil) == #"{"type":"pong"}"#)
    }

    @Test func unknownType() throws {
        let e = try #require(requestError(#"{"type":"retract","endpoint":"/t/k","id":"p"}"#))
        #expect(e.code == .unknownType)
        #expect(e.code.rawValue == "unknown_type")
        #expect(e.message.contains("\"retract\""))
        #expect(e.id == .string("p"))
    }

    @Test func errorCodeStrings() {
        #expect(ClientProtocol.ErrorCode.badRequest.rawValue == "bad_request")
        #expect(ClientProtocol.ErrorCode.invalidEndpoint.rawValue == "invalid_endpoint")
        #expect(ClientProtocol.ErrorCode.tooManySubscriptions.rawValue == "too_many_subscriptions")
    }

    // MARK: Replies

    @Test func welcome() throws {
        let o = try jsonObject(ClientProtocol.welcome(identity: Identity(subject: "svc \"a\"", rights: .none, expiresAt: 1_900_000_000.7)))
        #expect(o["type"] as? String == "welcome")
        #expect(o["protocol"] as? String == "streamgate.v1")
        #expect(o["subject"] as? String == "svc \"a\"")
        #expect(o["expires_at"] as? Int == 1_900_000_000)
        let anonymous = try jsonObject(ClientProtocol.welcome(identity: Identity(subject: "anonymous", rights: .all, expiresAt: nil)))
        #expect(anonymous["expires_at"] is NSNull)
    }

    /// Tokens and authorization services can carry any number as an expiry:
    /// the identity keeps one the host can print and compare (this trapped).
    @Test func extremeExpiriesAreClampedNotFatal() throws {
        for (given, kept) in [(1e300, Identity.expiryBound), (-.infinity, -Identity.expiryBound),
                              (.infinity, Identity.expiryBound), (.nan, 0)] {
            let identity = Identity(subject: "s", rights: .none, expiresAt: given)
            #expect(identity.expiresAt == kept)
            let o = try jsonObject(ClientProtocol.welcome(identity: identity))
            #expect(o["expires_at"] as? Int == Int(kept))
            #expect(ClientProtocol.tokenExpiring(expiresAt: identity.expiresAt!).contains("\(Int64(kept))"))
        }
    }

    @Test func subscribedEchoesStringId() throws {
        let o = try jsonObject(ClientProtocol.subscribed(endpoint: "/scores/live", id: .string("r\"1")))
        #expect(o["type"] as? String == "subscribed")
        #expect(o["endpoint"] as? String == "/scores/live")
        #expect(o["id"] as? String == "r\"1")
    }

    @Test func unsubscribedEchoesNumberId() throws {
        let o = try jsonObject(ClientProtocol.unsubscribed(endpoint: "/t/k", id: .number(17)))
        #expect(o["type"] as? String == "unsubscribed")
        #expect(o["endpoint"] as? String == "/t/k")
        #expect((o["id"] as? NSNumber)?.intValue == 17)
        let text = ClientProtocol.unsubscribed(endpoint: "/t/k", id: .number(17))
        #expect(text.contains(#""id":17"#), "integral ids are written without a fraction")
    }

    @Test func fractionalIdIsEchoed() throws {
        let o = try jsonObject(ClientProtocol.subscribed(endpoint: "/t/k", id: .number(2.5)))
        #expect((o["id"] as? NSNumber)?.doubleValue == 2.5)
    }

    @Test func replyWithoutIdHasNoIdField() throws {
        let o = try jsonObject(ClientProtocol.subscribed(endpoint: "/t/k", id: nil))
        #expect(o["id"] == nil)
        #expect(o.count == 2)
    }

    @Test func errorReply() throws {
        let text = ClientProtocol.error(
            .forbidden, "no \"access\"\n\\ here", endpoint: "/secret/\u{1}k", id: .string("z"))
        let o = try jsonObject(text)
        #expect(o["type"] as? String == "error")
        #expect(o["code"] as? String == "forbidden")
        #expect(o["message"] as? String == "no \"access\"\n\\ here")
        #expect(o["endpoint"] as? String == "/secret/\u{1}k")
        #expect(o["id"] as? String == "z")

        let bare = try jsonObject(ClientProtocol.error(.badRequest, "bad", id: nil))
        #expect(bare["endpoint"] == nil)
        #expect(bare["id"] == nil)
        #expect(bare["code"] as? String == "bad_request")
    }

    @Test func requestErrorRoundTripsThroughErrorReply() throws {
        let e = try #require(requestError(#"{"type":"nope","id":9}"#))
        let o = try jsonObject(ClientProtocol.error(e.code, e.message, id: e.id))
        #expect(o["code"] as? String == "unknown_type")
        #expect((o["id"] as? NSNumber)?.intValue == 9)
        #expect(o["message"] as? String == e.message)
    }

    @Test func jsonStringEscapes() throws {
        #expect(ClientProtocol.jsonString("plain") == #""plain""#)
        #expect(ClientProtocol.jsonString(#"a"b"#) == #""a\"b""#)
        #expect(ClientProtocol.jsonString(#"a\b"#) == #""a\\b""#)
        #expect(ClientProtocol.jsonString("l1\nl2\r\t") == #""l1\nl2\r\t""#)
        #expect(ClientProtocol.jsonString("\u{0}\u{1}\u{1F}") == #""\u0000\u0001\u001f""#)
        #expect(ClientProtocol.jsonString("é😀/") == "\"é😀/\"")
    }

    @Test func jsonStringOfEveryControlCharacterParsesBack() throws {
        var s = ""
        for v in 0..<0x20 { s.unicodeScalars.append(Unicode.Scalar(UInt8(v))) }
        s += "\"\\\u{7F}é😀\u{2028}"
        let literal = ClientProtocol.jsonString(s)
        for v in 0..<0x20 {
            #expect(!literal.unicodeScalars.contains(Unicode.Scalar(UInt8(v))), "raw control \(v) in output")
        }
        let decoded = try JSONSerialization.jsonObject(with: Data("[\(literal)]".utf8)) as? [String]
        #expect(decoded == [s])
    }
}
