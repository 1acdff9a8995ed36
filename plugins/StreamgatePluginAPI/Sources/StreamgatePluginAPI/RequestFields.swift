/// The upgrade request's header fields, read-only: names compared without
/// regard to case, values as sent (surrounding spaces trimmed), in request
/// order. Bounded by the gateway: at most `RequestHeaders.maxCount` fields,
/// and the whole head at most `websocket.max_header_bytes` (else HTTP 431).
public struct RequestHeaders: Sendable, Sequence {
    /// The most header fields a request may carry (more: HTTP 431).
    public static let maxCount = 64

    public struct Field: Sendable, Equatable {
        /// As sent (compare with `lowercasedName`).
        public let name: String
        public let value: String
        public var lowercasedName: String { name.lowercased() }

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// Every field as `name:value`, one per line: a single allocation,
    /// because a session keeps its credentials (for re-checks on revocation)
    /// as long as the connection lives. Names hold no `:` and values no line
    /// break (the gateway refuses CR, LF and NUL in header values).
    private let block: String
    public let count: Int

    /// At most `maxCount` fields are kept; a line break in a value (which
    /// the gateway never passes) becomes a space, a `:` in a name is dropped.
    public init(_ fields: [Field] = []) {
        let kept = fields.prefix(Self.maxCount)
        block = kept.map { field in
            let name = field.name.filter { $0 != ":" && !$0.isNewline }
            let value = String(field.value.map { $0.isNewline ? " " : $0 })
            return "\(name):\(value)"
        }.joined(separator: "\n")
        count = kept.count
    }

    /// The first value of the header `name` (any case), nil when absent.
    public subscript(_ name: String) -> String? {
        let wanted = name.lowercased()
        return first { $0.lowercasedName == wanted }?.value
    }

    /// Every value of the header `name` (any case), in request order.
    public func values(_ name: String) -> [String] {
        let wanted = name.lowercased()
        return filter { $0.lowercasedName == wanted }.map(\.value)
    }

    public func makeIterator() -> IndexingIterator<[Field]> {
        guard count > 0 else { return [Field]().makeIterator() }
        return block.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            let colon = line.firstIndex(of: ":")!
            return Field(name: String(line[..<colon]), value: String(line[line.index(after: colon)...]))
        }.makeIterator()
    }
}

/// Name/value pairs decoded from a query string or a `Cookie` header, in
/// order; a name may repeat (`first` and `values` tell them apart).
public struct RequestParameters: Sendable, Sequence {
    public struct Parameter: Sendable, Equatable {
        public let name: String
        public let value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    private let parameters: [Parameter]

    public init(_ parameters: [Parameter] = []) { self.parameters = parameters }

    /// `a=1&b=x%20y` (application/x-www-form-urlencoded: `+` is a space,
    /// `%XX` a byte; an undecodable value is kept as sent).
    public init(query: String) {
        self.init(query.split(separator: "&").compactMap { pair -> Parameter? in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = parts.first, !name.isEmpty else { return nil }
            let value = parts.count == 2 ? parts[1] : ""
            return Parameter(name: Self.formDecoded(name), value: Self.formDecoded(value))
        })
    }

    /// `Cookie: a=1; b=2` (RFC 6265 section 5.4: pairs separated by `;`,
    /// values as sent, surrounding double quotes removed).
    public init(cookieHeaders: [String]) {
        var parameters: [Parameter] = []
        for header in cookieHeaders {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = parts[0].trimmingSpaces
                guard !name.isEmpty, parts.count == 2 else { continue }
                var value = parts[1].trimmingSpaces
                if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
                parameters.append(Parameter(name: name, value: value))
            }
        }
        self.init(parameters)
    }

    /// The first value named `name`, nil when absent.
    public subscript(_ name: String) -> String? { parameters.first { $0.name == name }?.value }

    public func values(_ name: String) -> [String] { parameters.filter { $0.name == name }.map(\.value) }

    public var count: Int { parameters.count }
    public func makeIterator() -> IndexingIterator<[Parameter]> { parameters.makeIterator() }

    private static func formDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), utf8.count >= 2,
                      let high = hexValue(utf8[utf8.startIndex]), let low = hexValue(utf8[utf8.startIndex + 1])
            {
                bytes.append(high << 4 | low)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self) ?? String(text)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
