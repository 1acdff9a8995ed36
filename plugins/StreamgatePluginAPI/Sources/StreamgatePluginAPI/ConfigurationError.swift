/// A configuration mistake, named precisely: the key path, the bad value and
/// what was expected, e.g. `source.options.brokers: got 42, expected a string`.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible, Equatable {
    /// Dotted path of the offending key, e.g. `listen.port`.
    public let key: String
    /// The value found, as written in the file (nil when the key is missing).
    public let value: String?
    /// What the key must hold.
    public let expected: String

    /// When set, the whole explanation (for mistakes that are not a bad value,
    /// such as an unknown key).
    public let problem: String?

    public init(key: String, value: String?, expected: String) {
        self.key = key
        self.value = value
        self.expected = expected
        self.problem = nil
    }

    /// A mistake described in words, e.g. `unknown key (known keys: ...)`.
    public init(key: String, problem: String) {
        self.key = key
        self.value = nil
        self.expected = ""
        self.problem = problem
    }

    public var description: String {
        if let problem {
            return "\(key): \(problem)"
        }
        if let value {
            return "\(key): got \(value), expected \(expected)"
        }
        return "\(key): missing, expected \(expected)"
    }
}
