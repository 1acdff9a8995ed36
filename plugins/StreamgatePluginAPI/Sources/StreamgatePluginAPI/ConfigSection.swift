/// A JSON object from the configuration, read key by key.
///
/// Every read records the key; `finish()` then rejects any key nobody read,
/// so a typo is an error that names it instead of a silently ignored setting.
/// Errors carry the full dotted key path.
public final class ConfigSection: @unchecked Sendable {
    /// Dotted path of this section ("" for the root).
    public let path: String
    private let values: [String: JSONValue]
    private var readKeys: Set<String> = []

    public init(path: String, values: [String: JSONValue]) {
        self.path = path
        self.values = values
    }

    /// Wraps `value`, which must be an object (or null/missing, read as empty).
    public convenience init(path: String, value: JSONValue?) throws(ConfigurationError) {
        switch value {
        case .object(let o)?: self.init(path: path, values: o)
        case nil, .null?: self.init(path: path, values: [:])
        case let other?: throw ConfigurationError(key: path, value: other.description, expected: "an object")
        }
    }

    /// The dotted path of a key in this section.
    public func keyPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    public func contains(_ key: String) -> Bool { values[key] != nil }

    /// The raw value of a key (marks it read).
    public func raw(_ key: String) -> JSONValue? {
        readKeys.insert(key)
        return values[key]
    }

    private func mismatch(_ key: String, _ value: JSONValue, _ expected: String) -> ConfigurationError {
        ConfigurationError(key: keyPath(key), value: value.description, expected: expected)
    }

    public func string(_ key: String) throws(ConfigurationError) -> String? {
        switch raw(key) {
        case nil, .null?: return nil
        case .string(let s)?: return s
        case let v?: throw mismatch(key, v, "a string")
        }
    }

    public func string(_ key: String, default value: String) throws(ConfigurationError) -> String {
        try string(key) ?? value
    }

    public func requiredString(_ key: String, expected: String = "a string") throws(ConfigurationError) -> String {
        guard let s = try string(key) else {
            throw ConfigurationError(key: keyPath(key), value: nil, expected: expected)
        }
        return s
    }

    public func bool(_ key: String, default value: Bool) throws(ConfigurationError) -> Bool {
        switch raw(key) {
        case nil, .null?: return value
        case .bool(let b)?: return b
        case let v?: throw mismatch(key, v, "true or false")
        }
    }

    /// An integer within `range` (inclusive).
    public func int(_ key: String, default value: Int, range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        let expected = "an integer from \(range.lowerBound) to \(range.upperBound)"
        switch raw(key) {
        case nil, .null?: return value
        case .number(let n)?:
            guard n == n.rounded(), n >= Double(range.lowerBound), n <= Double(range.upperBound) else {
                throw mismatch(key, .number(n), expected)
            }
            return Int(n)
        case let v?: throw mismatch(key, v, expected)
        }
    }

    /// A number within `range` (inclusive).
    public func number(_ key: String, default value: Double, range: ClosedRange<Double>) throws(ConfigurationError) -> Double {
        let expected = "a number from \(range.lowerBound) to \(range.upperBound)"
        switch raw(key) {
        case nil, .null?: return value
        case .number(let n)?:
            guard range.contains(n) else { throw mismatch(key, .number(n), expected) }
            return n
        case let v?: throw mismatch(key, v, expected)
        }
    }

    public func stringArray(_ key: String) throws(ConfigurationError) -> [String]? {
        switch raw(key) {
        case nil, .null?: return nil
        case .array(let items)?:
            var out: [String] = []
            for (i, item) in items.enumerated() {
                guard case .string(let s) = item else {
                    throw ConfigurationError(key: "\(keyPath(key))[\(i)]", value: item.description, expected: "a string")
                }
                out.append(s)
            }
            return out
        case let v?: throw mismatch(key, v, "an array of strings")
        }
    }

    /// A nested object; missing reads as empty.
    public func section(_ key: String) throws(ConfigurationError) -> ConfigSection {
        try ConfigSection(path: keyPath(key), value: raw(key))
    }

    /// An object of string values (e.g. librdkafka properties).
    public func stringMap(_ key: String) throws(ConfigurationError) -> [String: String] {
        let nested = try section(key)
        var out: [String: String] = [:]
        for name in nested.values.keys.sorted() {
            out[name] = try nested.requiredString(name)
        }
        return out
    }

    /// Rejects keys that were never read: they are typos or unsupported settings.
    public func finish() throws(ConfigurationError) {
        if let unknown = values.keys.sorted().first(where: { !readKeys.contains($0) }) {
            throw ConfigurationError(
                key: keyPath(unknown),
                problem: "unknown key, got \(values[unknown]?.description ?? "null"); known keys: "
                    + readKeys.sorted().joined(separator: ", "))
        }
    }
}
