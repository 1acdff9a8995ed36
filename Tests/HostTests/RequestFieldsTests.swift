import StreamgatePluginAPI
import Testing

/// The upgrade request as plugins see it (plugin API 2.1): headers by any
/// case, decoded query parameters, cookies.
@Suite("Plugin API: the upgrade request's headers, query parameters and cookies")
struct RequestFieldsTests {
    static let headers = RequestHeaders([
        .init(name: "Host", value: "gw"), .init(name: "X-Tenant", value: "acme"),
        .init(name: "Cookie", value: "a=1; sg_key=\"k 1\""), .init(name: "cookie", value: "b=2;a=3"),
    ])

    @Test func headersAreFoundByAnyCaseInRequestOrder() {
        #expect(Self.headers["x-tenant"] == "acme")
        #expect(Self.headers["X-TENANT"] == "acme")
        #expect(Self.headers["missing"] == nil)
        #expect(Self.headers.values("COOKIE") == ["a=1; sg_key=\"k 1\"", "b=2;a=3"])
        #expect(Self.headers.map(\.name) == ["Host", "X-Tenant", "Cookie", "cookie"])
    }

    @Test func aLineBreakInAValueCannotForgeAField() {
        let headers = RequestHeaders([.init(name: "X-A", value: "one\nX-Admin: yes"), .init(name: "X:B", value: "2")])
        #expect(headers.count == 2)
        #expect(headers["x-a"] == "one X-Admin: yes")
        #expect(headers["x-admin"] == nil)
        #expect(headers["xb"] == "2")
        #expect(RequestHeaders().map(\.name).isEmpty)
    }

    @Test func headersAreBounded() {
        let many = RequestHeaders((0..<100).map { .init(name: "h\($0)", value: "\($0)") })
        #expect(many.count == RequestHeaders.maxCount)
    }

    @Test func cookiesComeFromEveryCookieHeader() {
        let info = ConnectionInfo(remoteAddress: "127.0.0.1:1", query: "", authorization: "", origin: "",
                                  headers: Self.headers)
        let credentials = Credentials(token: nil, connection: info)
        #expect(credentials.cookies["sg_key"] == "k 1", "quotes removed")
        #expect(credentials.cookies.values("a") == ["1", "3"])
        #expect(credentials.cookies["b"] == "2")
        #expect(credentials.headers["host"] == "gw")
        #expect(RequestParameters(cookieHeaders: ["=x; novalue; ok=1; e="]).map(\.name) == ["ok", "e"])
    }

    @Test func queryParametersAreFormDecoded() {
        let query = RequestParameters(query: "access_token=a%2Bb&name=J+D%C3%B6e&flag&=skipped&bad=%zz&x=1&x=2")
        #expect(query["access_token"] == "a+b")
        #expect(query["name"] == "J Döe")
        #expect(query["flag"] == "")
        #expect(query["bad"] == "%zz", "an undecodable escape is kept as sent")
        #expect(query.values("x") == ["1", "2"])
        #expect(query.count == 6)
        let info = ConnectionInfo(remoteAddress: "", query: "tenant=acme", authorization: "", origin: "")
        #expect(Credentials(token: nil, connection: info).queryParameters["tenant"] == "acme")
        #expect(RequestParameters(query: "").count == 0)
    }
}
