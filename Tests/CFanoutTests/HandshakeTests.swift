import CFanout
import Testing

func acceptKey(_ key: String) -> (Int32, String) {
    var out = [CChar](repeating: 0x7A, count: 29)
    let bytes = Array(key.utf8)
    let r = bytes.withUnsafeBufferPointer { buf in
        buf.withMemoryRebound(to: CChar.self) { cf_ws_accept_key($0.baseAddress, $0.count, &out) }
    }
    return (r, String(decoding: out.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self))
}

func parseRequest(_ head: String) -> cf_http_request {
    var req = cf_http_request()
    let bytes = Array(head.utf8)
    bytes.withUnsafeBufferPointer { buf in
        buf.withMemoryRebound(to: CChar.self) { cf_http_parse_request($0.baseAddress, $0.count, &req) }
    }
    return req
}

func errorText(_ req: cf_http_request) -> String {
    req.error.map { String(cString: $0) } ?? ""
}

@Suite("cf_ws_accept_key")
struct AcceptKeyTests {
    /// RFC 6455 section 1.3: key "dGhlIHNhbXBsZSBub25jZQ==" gives "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    /// (the SHA-1 of key + GUID is b37a4f2cc0624f1690f64606cf385945b2bec4ea).
    @Test func rfc6455Example() {
        let (r, accept) = acceptKey("dGhlIHNhbXBsZSBub25jZQ==")
        #expect(r == 0)
        #expect(accept == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    }

    @Test func anotherKnownKey() {
        // Computed independently: base64(SHA-1("x3JJHMbDL1EzLkh9GBhXDw==" + GUID)).
        let (r, accept) = acceptKey("x3JJHMbDL1EzLkh9GBhXDw==")
        #expect(r == 0)
        #expect(accept == "HSmrc0sMlYUkAGmm5OPpG2HaGWk=")
    }

    @Test func writesExactly28CharsAndTerminator() {
        var out = [CChar](repeating: 0x7A, count: 29)
        let key = Array("AAAAAAAAAAAAAAAAAAAAAA==".utf8).map { CChar(bitPattern: $0) }
        #expect(cf_ws_accept_key(key, key.count, &out) == 0)
        #expect(out[28] == 0)
        #expect(!out[0..<28].contains(0))
    }

    @Test(arguments: [
        "",
        "dGhlIHNhbXBsZSBub25jZQ=",  // 23 chars
        "dGhlIHNhbXBsZSBub25jZQ===",  // 25 chars
        "dGhlIHNhbXBsZSBub25jZQAA",  // missing ==
        "dGhlIHNhbXBsZSBub25jZ=Q=",
        "dGhlIHNhbXBsZSBub25jZQ=A",
        "dGhlIHNhbXBsZSBub25j*Q==",  // bad char
        "dGhlIHNhbXBsZSBub25j ZQ==",
        "dGhlIHNhbXBsZSBu-25jZQ==",
        "dGhlIHNhbXBsZSBub25j=Q==",
    ])
    func malformedKeysAreRejected(key: String) {
        #expect(acceptKey(key).0 == -1, "\(key)")
    }
}

@Suite("cf_http_parse_request")
struct HTTPRequestTests {
    static let key = "dGhlIHNhbXBsZSBub25jZQ=="

    static func upgrade(
        method: String = "GET", target: String = "/ws?token=abc&x=1", version: String = "HTTP/1.1",
        headers: [String]? = nil
    ) -> String {
        let hs = headers ?? [
            "Host: example.com:8080",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: \(key)",
            "Sec-WebSocket-Version: 13",
        ]
        return "\(method) \(target) \(version)\r\n" + hs.map { $0 + "\r\n" }.joined() + "\r\n"
    }

    @Test func validUpgradeExtractsFields() {
        let req = parseRequest(Self.upgrade(headers: [
            "Host: example.com",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: \(Self.key)",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Protocol: chat, streamgate.v1",
            "Authorization: Bearer abc.def",
            "Origin: https://example.com",
        ]))
        #expect(req.status == 0)
        #expect(req.error == nil)
        #expect(req.is_upgrade == 1)
        #expect(cString(req.method) == "GET")
        #expect(cString(req.path) == "/ws")
        #expect(cString(req.query) == "token=abc&x=1")
        #expect(cString(req.key) == Self.key)
        #expect(cString(req.authorization) == "Bearer abc.def")
        #expect(cString(req.origin) == "https://example.com")
        #expect(req.offers_streamgate_v1 == 1)
    }

    @Test func absentOptionalHeadersAreEmpty() {
        let req = parseRequest(Self.upgrade(target: "/stream"))
        #expect(req.status == 0)
        #expect(cString(req.path) == "/stream")
        #expect(cString(req.query) == "")
        #expect(cString(req.authorization) == "")
        #expect(cString(req.origin) == "")
        #expect(req.offers_streamgate_v1 == 0)
    }

    @Test func headerNamesAreCaseInsensitiveAndConnectionIsAList() {
        let req = parseRequest(Self.upgrade(headers: [
            "host: example.com",
            "UPGRADE: WebSocket",
            "connection: keep-alive, Upgrade",
            "sec-websocket-key:   \(Self.key)  ",
            "SEC-WEBSOCKET-VERSION: 13",
            "sec-websocket-protocol: STREAMGATE.V1",
            "authorization: Basic Zm9vOmJhcg==",
            "ORIGIN: http://a.test",
        ]))
        #expect(req.status == 0, "\(errorText(req))")
        #expect(req.is_upgrade == 1)
        #expect(cString(req.key) == Self.key)
        #expect(cString(req.authorization) == "Basic Zm9vOmJhcg==")
        #expect(cString(req.origin) == "http://a.test")
        #expect(req.offers_streamgate_v1 == 1)
    }

    @Test func otherSubprotocolIsNotStreamgate() {
        let req = parseRequest(Self.upgrade(headers: [
            "Host: h", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: \(Self.key)",
            "Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: streamgate.v10, xstreamgate.v1",
        ]))
        #expect(req.status == 0)
        #expect(req.offers_streamgate_v1 == 0)
    }

    @Test(arguments: ["POST", "PUT", "DELETE", "HEAD", "OPTIONS"])
    func nonGetIs405(method: String) {
        let req = parseRequest(Self.upgrade(method: method))
        #expect(req.status == 405)
        #expect(!errorText(req).isEmpty)
    }

    @Test func missingUpgradeIs426() {
        let req = parseRequest(Self.upgrade(headers: [
            "Host: h", "Connection: Upgrade", "Sec-WebSocket-Key: \(Self.key)", "Sec-WebSocket-Version: 13",
        ]))
        #expect(req.status == 426)
        #expect(req.is_upgrade == 0)

        let plain = parseRequest("GET /ws HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(plain.status == 426)
        #expect(plain.is_upgrade == 0)
        #expect(cString(plain.path) == "/ws")
    }

    @Test func missingConnectionUpgradeIs426() {
        let req = parseRequest(Self.upgrade(headers: [
            "Host: h", "Upgrade: websocket", "Connection: keep-alive", "Sec-WebSocket-Key: \(Self.key)",
            "Sec-WebSocket-Version: 13",
        ]))
        #expect(req.status == 426)
        #expect(req.is_upgrade == 0)
    }

    @Test(arguments: ["8", "12", "14", "13, 8", ""])
    func wrongVersionIs426(version: String) {
        let req = parseRequest(Self.upgrade(headers: [
            "Host: h", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: \(Self.key)",
            "Sec-WebSocket-Version: \(version)",
        ]))
        #expect(req.status == 426)
        #expect(req.is_upgrade == 1)
    }

    @Test func missingVersionIs426() {
        let req = parseRequest(Self.upgrade(headers: [
            "Host: h", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: \(Self.key)",
        ]))
        #expect(req.status == 426)
    }

    @Test(arguments: [nil, "", "short==", "dGhlIHNhbXBsZSBub25jZQAA", "dGhlIHNhbXBsZSBub25j*Q=="] as [String?])
    func missingOrMalformedKeyIs400(key: String?) {
        var headers = ["Host: h", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13"]
        if let key { headers.append("Sec-WebSocket-Key: \(key)") }
        let req = parseRequest(Self.upgrade(headers: headers))
        #expect(req.status == 400)
        #expect(errorText(req).contains("Key"))
    }

    @Test func missingHostIs400() {
        let req = parseRequest(Self.upgrade(headers: [
            "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: \(Self.key)", "Sec-WebSocket-Version: 13",
        ]))
        #expect(req.status == 400)
        #expect(errorText(req).contains("Host"))
    }

    @Test(arguments: [
        "garbage\r\n\r\n",
        "\r\n\r\n",
        "GET\r\n\r\n",
        "GET /ws\r\n\r\n",
        "GET  HTTP/1.1\r\n\r\n",
        "GET ws HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /ws HTTP/1.1\nHost: h\n\n",
        "GET /ws HTTP/2.0x\r\n\r\n",
        "GET /ws FTP/1.1\r\n\r\n",
        "G(T /ws HTTP/1.1\r\n\r\n",
        "GET /ws HTTP/1.1\r\nno colon here\r\n\r\n",
        "GET /ws HTTP/1.1\r\n: empty name\r\n\r\n",
        "GET /w s HTTP/1.1\r\n\r\n",
    ])
    func garbageIs400(head: String) {
        let req = parseRequest(head)
        #expect(req.status == 400, "\(head.debugDescription) gave \(req.status)")
        #expect(req.is_upgrade == 0)
    }

    @Test func http10UpgradeIs400() {
        let req = parseRequest(Self.upgrade(version: "HTTP/1.0"))
        #expect(req.status == 400)
        #expect(req.is_upgrade == 1)
        #expect(errorText(req).contains("HTTP/1.1"))
    }

    @Test func longMethodIs405() {
        let req = parseRequest(Self.upgrade(method: "PROPFINDX"))
        #expect(req.status == 405)
    }

    @Test func tooLongTargetIs414() {
        let req = parseRequest(Self.upgrade(target: "/" + String(repeating: "a", count: 300)))
        #expect(req.status == 414)
    }

    @Test func tooLargeAuthorizationIs431() {
        let req = parseRequest(Self.upgrade(headers: [
            "Host: h", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: \(Self.key)",
            "Sec-WebSocket-Version: 13", "Authorization: " + String(repeating: "x", count: 5000),
        ]))
        #expect(req.status == 431)
    }

    @Test func truncatedPrefixesNeverCrashOrSucceed() {
        let head = Array(Self.upgrade().utf8)
        for n in 0..<(head.count - 2) {
            var req = cf_http_request()
            head.withUnsafeBufferPointer { buf in
                buf.withMemoryRebound(to: CChar.self) { cf_http_parse_request($0.baseAddress, n, &req) }
            }
            // Without the final blank line the head is incomplete: it must not validate.
            #expect(req.status != 0, "prefix of \(n) bytes")
        }
    }
}

@Suite("cf_http_parse_request: every header field")
struct HTTPRequestHeaderFieldsTests {
    /// The fields of `head` as (name, value), read while the head exists.
    static func fields(_ head: String) -> (status: Int32, fields: [(String, String)]) {
        var req = cf_http_request()
        let bytes = Array(head.utf8)
        return bytes.withUnsafeBufferPointer { buf in
            buf.withMemoryRebound(to: CChar.self) { cf_http_parse_request($0.baseAddress, $0.count, &req) }
            let all = withUnsafeBytes(of: &req.headers) { raw in
                Array(raw.bindMemory(to: cf_http_header.self).prefix(req.header_count))
            }
            return (req.status, all.map { h in
                func text(_ p: UnsafePointer<CChar>, _ n: Int) -> String {
                    p.withMemoryRebound(to: UInt8.self, capacity: n) {
                        String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self)
                    }
                }
                return (text(h.name, h.name_length), text(h.value, h.value_length))
            })
        }
    }

    @Test func everyFieldIsKeptInOrderWithItsValueTrimmed() {
        let head = HTTPRequestTests.upgrade(headers: [
            "Host: h", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: \(HTTPRequestTests.key)",
            "Sec-WebSocket-Version: 13", "Cookie: a=1; sg_key=k", "X-Tenant:\t acme \t", "X-Empty:",
        ])
        let parsed = Self.fields(head)
        #expect(parsed.status == 0)
        #expect(parsed.fields.map(\.0) == ["Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
                                           "Cookie", "X-Tenant", "X-Empty"])
        #expect(parsed.fields[5].1 == "a=1; sg_key=k")
        #expect(parsed.fields[6].1 == "acme")
        #expect(parsed.fields[7].1 == "")
    }

    @Test func aValueWithACarriageReturnOrANulIs400() {
        for bad in ["X-A: one\rtwo", "X-A: one\u{0}two"] {
            let head = HTTPRequestTests.upgrade(headers: ["Host: h", bad, "Upgrade: websocket", "Connection: Upgrade",
                                                          "Sec-WebSocket-Key: \(HTTPRequestTests.key)", "Sec-WebSocket-Version: 13"])
            #expect(Self.fields(head).status == 400, "\(bad.debugDescription)")
        }
    }

    @Test func moreThanTheMostFieldsIs431() {
        let base = ["Host: h", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: \(HTTPRequestTests.key)",
                    "Sec-WebSocket-Version: 13"]
        let filler = Int(CF_MAX_HEADERS) - base.count
        #expect(Self.fields(HTTPRequestTests.upgrade(headers: base + (0..<filler).map { "X-\($0): v" })).status == 0)
        let tooMany = Self.fields(HTTPRequestTests.upgrade(headers: base + (0...filler).map { "X-\($0): v" }))
        #expect(tooMany.status == 431)
    }
}
