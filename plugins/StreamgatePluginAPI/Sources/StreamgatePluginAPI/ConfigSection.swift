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

    /// An object of string values (e.g. librdkafka properties). Each value
    /// may also be a secret reference (see `secret`): property maps carry
    /// passwords and keys (`sasl.password`, `ssl.key.password`).
    public func stringMap(_ key: String) throws(ConfigurationError) -> [String: String] {
        let nested = try section(key)
        var out: [String: String] = [:]
        for name in nested.values.keys.sorted() {
            guard let value = try nested.secret(name) else {
                throw ConfigurationError(key: nested.keyPath(name), value: "null", expected: "a string, {\"env\": NAME} or {\"file\": PATH}")
            }
            out[name] = value
        }
        return out
    }

    /// A value that may be secret (since API 2.3): a string written in the
    /// configuration, or a reference that keeps it out of the file:
    /// `{"env": "NAME"}` (an environment variable) or `{"file": "/path"}` (the
    /// file's contents, without one trailing newline: the way container and
    /// systemd credentials are mounted). Errors name the key, the variable or
    /// the file, never the value. Nil when the key is absent.
    public func secret(_ key: String) throws(ConfigurationError) -> String? {
        let expected = "a string, {\"env\": NAME} or {\"file\": PATH}"
        switch raw(key) {
        case nil, .null?: return nil
        case .string(let s)?: return s
        case .object(let reference)? where reference.count == 1:
            switch reference.first! {
            case ("env", .string(let name)):
                guard let value = Environment.value(of: name) else {
                    throw ConfigurationError(key: keyPath(key), problem: "the environment variable \(name) is not set")
                }
                return value
            case ("file", .string(let path)):
                guard let contents = SecretFile.read(path) else {
                    throw ConfigurationError(key: keyPath(key), problem: "cannot read the secret file \(path)")
                }
                return contents.hasSuffix("\r\n") ? String(contents.dropLast(2))
                    : contents.hasSuffix("\n") ? String(contents.dropLast()) : contents
            default:
                throw ConfigurationError(key: keyPath(key), value: "an object", expected: expected)
            }
        case .object?:
            throw ConfigurationError(key: keyPath(key), value: "an object", expected: expected)
        case let v?:
            throw mismatch(key, v, expected)
        }
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
