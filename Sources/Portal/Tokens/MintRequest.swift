import StreamgatePluginAPI

/// What `POST /api/v1/apis/{name}/tokens` asks for, checked against the API:
///
///     {"subject": "alice", "expires_in": 86400,
///      "subscribe": true,                       // every endpoint that allows it
///      "publish": ["/orders/{sub}/**"],         // or chosen patterns; {claim} binds a claim
///      "claims": {"tenant": "acme"}, "description": "alice's phone"}
///
/// A pattern segment `{name}` stands for the token's claim of that name
/// (`sub`, or one of `claims`); gateways bind it when they verify the token,
/// so one API serves per-user streams. Every pattern must reach at least one
/// endpoint of the API that allows the action: a right that could never be
/// used is a mistake worth an error.
public struct MintRequest: Sendable {
    public let subject: String
    public let expiresIn: Int
    public let subscribe: [String]
    public let publish: [String]
    public let claims: [String: String]
    public let description: String

    /// Bounds on a token's patterns, so checking them stays cheap for every
    /// gateway (which reads at most 64 per action).
    static let maxPatterns = 64
    static let maxDoubleStars = 4

    /// Claims the portal sets itself.
    static let reservedClaims: Set<String> = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "api", "subscribe", "publish"]

    public init(json: JSONValue, api: ApiDefinition, maxSeconds: Int) throws(ConfigurationError) {
        let root = try ConfigSection(path: "", value: json)
        subject = try root.requiredString("subject", expected: "who the token is for (1 to 256 characters)")
        guard !subject.isEmpty, subject.utf8.count <= 256,
              !subject.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw ConfigurationError(key: "subject", value: "\"\(subject)\"", expected: "1 to 256 characters, no control characters")
        }
        expiresIn = try root.int("expires_in", default: 86_400, range: 60...maxSeconds)
        var claims: [String: String] = [:]
        if root.contains("claims") {
            let section = try root.section("claims")
            guard case .object(let object)? = root.raw("claims") else { throw ConfigurationError(key: "claims", value: nil, expected: "an object of strings") }
            for name in object.keys.sorted() {
                guard TemplateParameter.isValidName(name), !Self.reservedClaims.contains(name) else {
                    throw ConfigurationError(key: "claims.\(name)", value: nil,
                                             expected: "a claim name (a letter or '_', then letters, digits or '_') other than \(Self.reservedClaims.sorted().joined(separator: ", "))")
                }
                claims[name] = try section.requiredString(name, expected: "a string")
            }
            try section.finish()
        }
        self.claims = claims
        description = try root.string("description", default: "")
        var bound = claims
        bound["sub"] = subject
        subscribe = try Self.rights(root, "subscribe", action: .subscribe, api: api, bound: bound)
        publish = try Self.rights(root, "publish", action: .publish, api: api, bound: bound)
        guard !subscribe.isEmpty || !publish.isEmpty else {
            throw ConfigurationError(key: "subscribe", value: nil, expected: "some rights: \"subscribe\" and/or \"publish\" (true, or an array of endpoint patterns)")
        }
        try root.finish()
    }

    /// `true`: every endpoint of the API allowing `action`, as a pattern;
    /// an array: those patterns, each checked.
    private static func rights(_ root: ConfigSection, _ key: String, action: EndpointAction, api: ApiDefinition,
                               bound: [String: String]) throws(ConfigurationError) -> [String]
    {
        let allowing = api.endpoints.filter { $0.actions.contains(action) }
        switch root.raw(key) {
        case nil, .null?, .bool(false)?:
            return []
        case .bool(true)?:
            guard !allowing.isEmpty else {
                throw ConfigurationError(key: key, value: "true", expected: "false: no endpoint of API '\(api.name)' allows \(action.rawValue)")
            }
            return allowing.map { Self.pattern(of: $0.path) }
        case .array(let items)?:
            guard items.count <= maxPatterns else {
                throw ConfigurationError(key: key, value: "(\(items.count) patterns)", expected: "at most \(maxPatterns) patterns")
            }
            var patterns: [String] = []
            for (i, item) in items.enumerated() {
                guard case .string(let text) = item else {
                    throw ConfigurationError(key: "\(key)[\(i)]", value: item.description, expected: "an endpoint pattern (a string)")
                }
                guard text.components(separatedBy: "/**").count - 1 <= maxDoubleStars else {
                    throw ConfigurationError(key: "\(key)[\(i)]", value: "\"\(text)\"", expected: "at most \(maxDoubleStars) '**' segments")
                }
                let concrete: EndpointPattern
                do {
                    concrete = try EndpointPattern(try ClaimBinding.bind(text, claims: bound))
                } catch {
                    throw ConfigurationError(key: "\(key)[\(i)]", value: "\"\(text)\"", expected: "an endpoint pattern: \(error.reason)")
                }
                guard allowing.contains(where: { !concrete.restricted(to: $0.path, limit: 1).isEmpty }) else {
                    throw ConfigurationError(key: "\(key)[\(i)]", value: "\"\(text)\"",
                                             expected: "a pattern that reaches an endpoint of API '\(api.name)' allowing \(action.rawValue) (\(allowing.map(\.path.text).joined(separator: ", ")))")
                }
                patterns.append(text)
            }
            return patterns
        case let other?:
            throw ConfigurationError(key: key, value: other.description, expected: "true, false or an array of endpoint patterns")
        }
    }

    /// An endpoint template as a rights pattern: each parameter becomes `*`.
    static func pattern(of template: EndpointTemplate) -> String {
        "/" + template.segments.map { if case .literal(let literal) = $0 { literal } else { "*" } }.joined(separator: "/")
    }
}
