import StreamgatePluginAPI
import StreamgatePlugins
import Testing

@Suite("TopicKeyMapper")
struct TopicKeyMapperTests {
    let mapper = TopicKeyMapper()

    @Test func topicAndKeyWithSlashes() throws {
        let address = try mapper.address(of: "/scores/live/football")
        #expect(address == KafkaAddress(topic: "scores", key: "live/football"))
    }

    @Test(arguments: [
        ("/t/k", "t", "k"),
        ("/a.b_c-D9/key with spaces", "a.b_c-D9", "key with spaces"),
        ("/t/ünïcødé/😀", "t", "ünïcødé/😀"),
        ("/t//leading-slash-key", "t", "/leading-slash-key"),
        ("/t/trailing/", "t", "trailing/"),
    ])
    func validEndpoints(endpoint: String, topic: String, key: String) throws {
        let address = try mapper.address(of: endpoint)
        #expect(address.topic == topic)
        #expect(address.key == key)
    }

    @Test(arguments: [
        "", "scores/x", "/scores", "/scores/", "/bad topic/x", "/a/\u{1}", "/a/x\u{7F}", "//x", "/../x", "/./x",
        "/t\u{e9}/x",
    ])
    func invalidEndpoints(endpoint: String) {
        #expect(throws: EndpointError.self, "\(endpoint.debugDescription)") {
            try mapper.address(of: endpoint)
        }
    }

    @Test func errorsExplainTheProblem() throws {
        func reason(_ e: String) -> String {
            do {
                _ = try mapper.address(of: e)
                return ""
            } catch {
                return error.reason
            }
        }
        #expect(reason("scores/x").contains("start with '/'"))
        #expect(reason("/scores").contains("topic and a key"))
        #expect(reason("/scores/").contains("non-empty key"))
        #expect(reason("/bad topic/x").contains("'bad topic'"))
        #expect(reason("/a/\u{1}").contains("control characters (found U+0001)"))
    }

    /// Every Unicode control character (category Cc) is refused, the C1
    /// ones too (U+0085 NEL was accepted once); other categories pass.
    @Test func controlCharactersAreRefusedWhereverTheyAre() throws {
        for value in Array(0x00...0x1F) + [0x7F] + Array(0x80...0x9F) {
            let scalar = Unicode.Scalar(UInt32(value))!
            for key in ["\(Character(scalar))", "a\(Character(scalar))", "a\(Character(scalar))b"] {
                #expect(throws: EndpointError.self, "U+\(String(value, radix: 16))") { try mapper.address(of: "/t/\(key)") }
            }
        }
        // Format characters, non-ASCII letters and emoji are not control characters.
        for key in ["\u{00A0}", "\u{200B}", "\u{00E9}t\u{00E9}", "\u{1F3C8}", "live/\u{00FC}"] {
            #expect(try mapper.address(of: "/t/\(key)").key == key)
        }
    }

    @Test func lengthLimits() throws {
        let topic249 = String(repeating: "t", count: 249)
        #expect(try mapper.address(of: "/\(topic249)/k").topic == topic249)
        #expect(throws: EndpointError.self) { try mapper.address(of: "/\(topic249)t/k") }
        let maxKey = String(repeating: "k", count: TopicKeyMapper.maxEndpointBytes - 3)
        #expect(try mapper.address(of: "/t/\(maxKey)").key == maxKey)
        #expect(throws: EndpointError.self) { try mapper.address(of: "/t/\(maxKey)k") }
    }

    @Test(arguments: ["live/football", "k", "ünïcødé", "a b"])
    func endpointRoundTrips(key: String) throws {
        let bytes = Array(key.utf8)
        let endpoint = try #require(bytes.withUnsafeBytes { mapper.endpoint(topic: "scores", key: $0) })
        #expect(endpoint == "/scores/\(key)")
        #expect(try mapper.address(of: endpoint) == KafkaAddress(topic: "scores", key: key))
    }

    @Test func noEndpointForEmptyOrInvalidKeys() {
        let empty: [UInt8] = []
        #expect(empty.withUnsafeBytes { mapper.endpoint(topic: "t", key: $0) } == nil)
        #expect(mapper.endpoint(topic: "t", key: UnsafeRawBufferPointer(start: nil, count: 0)) == nil)
        for invalid: [UInt8] in [[0xFF], [0x61, 0xC0, 0x80], [0xED, 0xA0, 0x80], [0xE2, 0x82]] {
            #expect(invalid.withUnsafeBytes { mapper.endpoint(topic: "t", key: $0) } == nil, "\(invalid)")
        }
    }

    @Test func isValidTopic() {
        #expect(KafkaAddress.isValidTopic("scores"))
        #expect(KafkaAddress.isValidTopic("a.b-c_D9"))
        #expect(!KafkaAddress.isValidTopic(""))
        #expect(!KafkaAddress.isValidTopic("."))
        #expect(!KafkaAddress.isValidTopic(".."))
        #expect(!KafkaAddress.isValidTopic("a/b"))
        #expect(!KafkaAddress.isValidTopic("é"))
        #expect(!KafkaAddress.isValidTopic(String(repeating: "x", count: 250)))
    }
}
