import CFanout
import Testing

@Suite("cf_utf8_validate")
struct UTF8ValidatorTests {
    static let validSamples: [[UInt8]] = [
        [],
        Array("hello, world".utf8),
        Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8),
        [0x7F],
        Array("é".utf8),  // 2 bytes
        [0xC2, 0x80],  // U+0080
        [0xDF, 0xBF],  // U+07FF
        Array("€".utf8),  // 3 bytes
        [0xE0, 0xA0, 0x80],  // U+0800
        [0xED, 0x9F, 0xBF],  // U+D7FF
        [0xEE, 0x80, 0x80],  // U+E000
        [0xEF, 0xBF, 0xBF],  // U+FFFF
        Array("😀".utf8),  // 4 bytes
        [0xF0, 0x90, 0x80, 0x80],  // U+10000
        [0xF4, 0x8F, 0xBF, 0xBF],  // U+10FFFF
        [0xF3, 0xBF, 0xBF, 0xBF],
        Array("Grüße, Ελληνικά, 日本語, 🇫🇷 and ascii padding to pass eight bytes".utf8),
        Array("κόσμε".utf8),
    ]

    @Test(arguments: validSamples)
    func validStringsAreAccepted(bytes: [UInt8]) {
        #expect(utf8State(bytes) == CF_UTF8_ACCEPT)
    }

    @Test(arguments: [
        [0xC0, 0x80],  // overlong NUL
        [0xC1, 0xBF],  // overlong
        [0xE0, 0x80, 0x80],  // overlong 3-byte
        [0xE0, 0x9F, 0xBF],  // overlong 3-byte
        [0xF0, 0x80, 0x80, 0x80],  // overlong 4-byte
        [0xF0, 0x8F, 0xBF, 0xBF],  // overlong 4-byte
        [0xED, 0xA0, 0x80],  // high surrogate U+D800
        [0xED, 0xBF, 0xBF],  // low surrogate U+DFFF
        [0xF4, 0x90, 0x80, 0x80],  // U+110000
        [0xF5, 0x80, 0x80, 0x80],
        [0xFF],
        [0xFE],
        [0x80],  // lone continuation
        [0x41, 0xBF, 0x41],
        [0xC2, 0x41],  // missing continuation
        [0xE2, 0x82, 0x41],
        [0xF0, 0x9F, 0x98, 0x41],
    ] as [[UInt8]])
    func invalidSequencesAreRejected(bytes: [UInt8]) {
        #expect(utf8State(bytes) == CF_UTF8_REJECT)
        // Also when preceded by a run of ASCII that takes the 8-byte fast path.
        #expect(utf8State(Array("ascii-prefix-long".utf8) + bytes) == CF_UTF8_REJECT)
        // Reject is sticky: feeding valid data afterwards keeps it rejected.
        #expect(utf8State(Array("ok".utf8), state: utf8State(bytes)) == CF_UTF8_REJECT)
    }

    @Test(arguments: [
        [0xC3],
        [0xE2],
        [0xE2, 0x82],
        [0xE0],
        [0xE0, 0xA0],
        [0xED],
        [0xED, 0x9F],
        [0xF0],
        [0xF0, 0x9F],
        [0xF0, 0x9F, 0x98],
        [0xF4],
        [0xF4, 0x8F, 0xBF],
    ] as [[UInt8]])
    func truncatedSequenceIsIncomplete(bytes: [UInt8]) {
        let state = utf8State(bytes)
        #expect(state != CF_UTF8_ACCEPT)
        #expect(state != CF_UTF8_REJECT)
    }

    @Test func completingAnIncompleteSequenceInASecondCall() {
        let euro: [UInt8] = [0xE2, 0x82, 0xAC]
        let s1 = utf8State(Array(euro[0..<1]))
        #expect(s1 != CF_UTF8_ACCEPT && s1 != CF_UTF8_REJECT)
        #expect(utf8State(Array(euro[1...]), state: s1) == CF_UTF8_ACCEPT)

        let emoji: [UInt8] = [0xF0, 0x9F, 0x98, 0x80]
        let s2 = utf8State(Array(emoji[0..<3]))
        #expect(s2 != CF_UTF8_ACCEPT && s2 != CF_UTF8_REJECT)
        #expect(utf8State([0x80], state: s2) == CF_UTF8_ACCEPT)
        // An invalid completion is rejected.
        #expect(utf8State([0x41], state: s2) == CF_UTF8_REJECT)
        // The range checks of the lead byte carry across calls: E0 then 80 is overlong.
        #expect(utf8State([0x80, 0x80], state: utf8State([0xE0])) == CF_UTF8_REJECT)
        #expect(utf8State([0xA0, 0x80], state: utf8State([0xED])) == CF_UTF8_REJECT)
        #expect(utf8State([0x90, 0x80, 0x80], state: utf8State([0xF4])) == CF_UTF8_REJECT)
        #expect(utf8State([0x8F, 0x80, 0x80], state: utf8State([0xF0])) == CF_UTF8_REJECT)
    }

    @Test(arguments: validSamples)
    func splittingAtEveryIndexMatchesOneCall(bytes: [UInt8]) {
        let whole = utf8State(bytes)
        for cut in 0...bytes.count {
            let first = utf8State(Array(bytes[..<cut]))
            let second = utf8State(Array(bytes[cut...]), state: first)
            #expect(second == whole, "cut at \(cut)")
        }
    }

    @Test func splittingInvalidInputAtEveryIndexStillRejects() {
        let samples: [[UInt8]] = [
            Array("abcdefghij".utf8) + [0xED, 0xA0, 0x80] + Array("klmnopqrstu".utf8),
            Array("€uro ".utf8) + [0xF4, 0x90, 0x80, 0x80],
            [0xE0, 0x80, 0x80] + Array("tail tail tail".utf8),
        ]
        for bytes in samples {
            for cut in 0...bytes.count {
                let first = utf8State(Array(bytes[..<cut]))
                let second = utf8State(Array(bytes[cut...]), state: first)
                #expect(second == CF_UTF8_REJECT, "cut at \(cut) of \(bytes)")
            }
        }
    }

    @Test func agreesWithSwiftOnRandomBytes() {
        var rng = SeededGenerator(seed: 42)
        // Bytes biased towards the interesting boundaries of the UTF-8 grammar.
        let interesting: [UInt8] = [
            0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1,
            0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF,
        ]
        var validCount = 0
        for _ in 0..<4000 {
            let length = Int.random(in: 0...24, using: &rng)
            var bytes: [UInt8] = []
            for _ in 0..<length {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: bytes.append(UInt8.random(in: 0...255, using: &rng))
                case 1: bytes.append(UInt8.random(in: 0x80...0xBF, using: &rng))
                case 2: bytes.append(UInt8.random(in: 0x20...0x7E, using: &rng))
                default: bytes.append(interesting.randomElement(using: &rng)!)
                }
            }
            // Sometimes a real character, so valid inputs are common too.
            if Bool.random(using: &rng) {
                let scalar = Unicode.Scalar(UInt32.random(in: 0...0x10FFFF, using: &rng)) ?? "x"
                bytes.insert(contentsOf: Array(String(Character(scalar)).utf8), at: Int.random(in: 0...bytes.count, using: &rng))
            }
            let expected = String(validating: bytes, as: UTF8.self) != nil
            let state = utf8State(bytes)
            #expect((state == CF_UTF8_ACCEPT) == expected, "bytes \(bytes)")
            if expected { validCount += 1 }
            // Incremental at a random split agrees with the one-call result.
            let cut = Int.random(in: 0...bytes.count, using: &rng)
            let split = utf8State(Array(bytes[cut...]), state: utf8State(Array(bytes[..<cut])))
            #expect(split == state, "split at \(cut) of \(bytes)")
        }
        #expect(validCount > 200, "the generator must produce valid inputs too")
    }

    @Test func agreesWithSwiftOnRandomValidText() {
        var rng = SeededGenerator(seed: 7)
        for _ in 0..<1000 {
            var s = ""
            for _ in 0..<Int.random(in: 1...20, using: &rng) {
                let v: UInt32
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: v = UInt32.random(in: 0...0x7F, using: &rng)
                case 1: v = UInt32.random(in: 0x80...0x7FF, using: &rng)
                case 2: v = UInt32.random(in: 0x800...0xFFFF, using: &rng)
                default: v = UInt32.random(in: 0x10000...0x10FFFF, using: &rng)
                }
                if let scalar = Unicode.Scalar(v) { s.unicodeScalars.append(scalar) }
            }
            let bytes = Array(s.utf8)
            #expect(utf8State(bytes) == CF_UTF8_ACCEPT, "\(bytes)")
            // Dropping the last byte of a text ending in a multi-byte scalar leaves it incomplete.
            if let last = s.unicodeScalars.last, last.value >= 0x80 {
                let state = utf8State(Array(bytes.dropLast()))
                #expect(state != CF_UTF8_ACCEPT && state != CF_UTF8_REJECT, "\(bytes)")
            }
        }
    }
}
