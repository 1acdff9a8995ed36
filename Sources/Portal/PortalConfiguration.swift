import Foundation
import NIOSSL
import StreamgatePluginAPI

/// Everything `portal.json` says, validated once; errors name the key.
///
///     {
///       "listen": {"host": "127.0.0.1", "port": 8090},
///       "database": "portal.sqlite",
///       "cluster_credential_file": "cluster.secret",
///       "admin": {"username": "admin", "password_file": "admin.password"},
///       "issuer": "streamgate-portal",
///       "gateway_urls": ["ws://127.0.0.1:8080/ws"],
///       "kafka": {"brokers": "127.0.0.1:9092"}
///     }
public struct PortalConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8090
    /// Listening elsewhere than loopback must be asked for by name: the
    /// portal mints tokens, and it has no TLS of its own yet.
    public var allowRemote = false
    /// `listen.tls`: serve https:// (nil: plain http://, e.g. behind a TLS proxy).
    public var tls: TLSConfiguration?
    /// The SQLite file (GRDB); ":memory:" only in tests.
    public var databasePath = "portal.sqlite"
    /// What gateways present (`Authorization: Bearer ...`) to read the gateway state.
    public var clusterCredential: String
    /// Created at start when no administrator exists yet.
    public var bootstrapAdmin: (username: String, password: String)?
    /// The `iss` of every token; the gateways' `portal` authorizer checks it.
    public var issuer = "streamgate-portal"
    /// The `aud` of every token, when set.
    public var audience: String?
    /// The gateways' WebSocket URLs: the AsyncAPI document's servers, the snippets' URLs.
    public var gatewayURLs: [String] = ["ws://127.0.0.1:8080/ws"]
    /// Kafka, asked for its topics so an API on an unknown topic is refused; nil: not checked.
    public var kafkaBrokers: String?
    public var kafkaProperties: [String: String] = [:]
    /// The longest a minted token may live.
    public var maxTokenSeconds = 366 * 86_400
    /// How long an administrator's login session lasts.
    public var sessionSeconds = 12 * 3600
    public var logLevel = "info"
    /// Serve the web UI from this folder instead of the embedded copy (UI development).
    public var uiDirectory: String?

    public init(clusterCredential: String) {
        self.clusterCredential = clusterCredential
    }

    /// Reads a configuration file; the error names the file and the key.
    public static func load(path: String) throws -> PortalConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PortalConfigurationError("\(path): cannot read the file")
        }
        let root: JSONValue
        do {
            root = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw PortalConfigurationError("\(path): not valid JSON (\(error))")
        }
        do {
            return try PortalConfiguration(root: ConfigSection(path: "", value: root), directory: (path as NSString).deletingLastPathComponent)
        } catch {
            throw PortalConfigurationError("\(path): \(error.description)")
        }
    }

    /// Relative file names are read relative to `directory` (the configuration file's).
    public init(root: ConfigSection, directory: String = "") throws(ConfigurationError) {
        let listen = try root.section("listen")
        host = try listen.string("host", default: host)
        port = try listen.int("port", default: port, range: 0...65535)
        allowRemote = try listen.bool("allow_remote", default: false)
        let tlsSection = try listen.section("tls")
        tls = try Self.tlsConfiguration(tlsSection, directory: directory)
        try tlsSection.finish()
        try listen.finish()
        guard allowRemote || Self.isLoopback(host) else {
            throw ConfigurationError(key: "listen.host", value: "\"\(host)\"",
                                     expected: "a loopback address (127.0.0.1, ::1, localhost), or set \"listen.allow_remote\": true")
        }
        databasePath = Self.resolve(try root.string("database", default: databasePath), in: directory)

        guard let credential = try Self.secret(root, "cluster_credential", directory: directory, minimumBytes: 16) else {
            throw ConfigurationError(key: "cluster_credential_file", value: nil,
                                     expected: "the file holding the secret gateways present (or \"cluster_credential\", or $STREAMGATE_CLUSTER_CREDENTIAL)")
        }
        clusterCredential = credential

        let admin = try root.section("admin")
        if let username = try admin.string("username") {
            guard let password = try Self.secret(admin, "password", directory: directory, minimumBytes: 8) else {
                throw ConfigurationError(key: "admin.password_file", value: nil, expected: "the first administrator's password (a file, or \"password\")")
            }
            bootstrapAdmin = (username, password)
        }
        try admin.finish()

        issuer = try root.string("issuer", default: issuer)
        audience = try root.string("audience")
        if let urls = try root.stringArray("gateway_urls") {
            for (i, url) in urls.enumerated() where !(url.hasPrefix("ws://") || url.hasPrefix("wss://")) {
                throw ConfigurationError(key: "gateway_urls[\(i)]", value: "\"\(url)\"", expected: "a ws:// or wss:// URL")
            }
            guard !urls.isEmpty else { throw ConfigurationError(key: "gateway_urls", value: "[]", expected: "at least one gateway URL") }
            gatewayURLs = urls
        }
        if root.contains("kafka") {
            let kafka = try root.section("kafka")
            kafkaBrokers = try kafka.requiredString("brokers", expected: "a string such as \"127.0.0.1:9092\"")
            kafkaProperties = try kafka.stringMap("properties")
            try kafka.finish()
        }
        maxTokenSeconds = try root.int("max_token_seconds", default: maxTokenSeconds, range: 60...(10 * 366 * 86_400))
        sessionSeconds = try root.int("session_seconds", default: sessionSeconds, range: 60...(30 * 86_400))
        logLevel = try root.string("log_level", default: logLevel)
        uiDirectory = try root.string("ui_directory").map { Self.resolve($0, in: directory) }
        try root.finish()
    }

    /// `listen.tls`: the PEM chain and key the portal serves https:// with,
    /// loaded now so a bad file is a configuration error naming the key.
    static func tlsConfiguration(_ section: ConfigSection, directory: String) throws(ConfigurationError) -> TLSConfiguration? {
        let chain = try section.string("certificate_chain").map { resolve($0, in: directory) }
        let key = try section.string("private_key").map { resolve($0, in: directory) }
        switch (chain, key) {
        case (nil, nil):
            return nil
        case let (chain?, key?):
            do {
                let certificates = try NIOSSLCertificate.fromPEMFile(chain).map { NIOSSLCertificateSource.certificate($0) }
                guard !certificates.isEmpty else {
                    throw ConfigurationError(key: section.keyPath("certificate_chain"), problem: "no certificate in \(chain)")
                }
                var configuration = TLSConfiguration.makeServerConfiguration(
                    certificateChain: certificates, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
                configuration.minimumTLSVersion = .tlsv12
                configuration.applicationProtocols = ["http/1.1"]
                _ = try NIOSSLContext(configuration: configuration)  // a key that does not match fails here
                return configuration
            } catch let error as ConfigurationError {
                throw error
            } catch {
                throw ConfigurationError(key: section.path, problem: "cannot use \(chain) and \(key): \(error)")
            }
        case (nil, _?):
            throw ConfigurationError(key: section.keyPath("certificate_chain"), value: nil, expected: "the PEM certificate chain's path (with private_key)")
        case (_?, nil):
            throw ConfigurationError(key: section.keyPath("private_key"), value: nil, expected: "the PEM private key's path (with certificate_chain)")
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    static func resolve(_ path: String, in directory: String) -> String {
        path.hasPrefix("/") || directory.isEmpty || path == ":memory:" ? path : directory + "/" + path
    }

    /// A secret given inline (`name`), in a file (`name_file`, trailing
    /// newlines dropped) or, for the cluster credential, in the environment.
    static func secret(_ section: ConfigSection, _ name: String, directory: String, minimumBytes: Int) throws(ConfigurationError) -> String? {
        var value = try section.string(name)
        if let file = try section.string(name + "_file") {
            let path = resolve(file, in: directory)
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw ConfigurationError(key: section.keyPath(name + "_file"), value: "\"\(file)\"", expected: "a readable file")
            }
            value = String(text.reversed().drop(while: \.isNewline).reversed())
        }
        if value == nil, name == "cluster_credential", let env = ProcessInfo.processInfo.environment["STREAMGATE_CLUSTER_CREDENTIAL"] {
            value = env
        }
        if let value, value.utf8.count < minimumBytes {
            throw ConfigurationError(key: section.keyPath(name), value: "(\(value.utf8.count) bytes)", expected: "at least \(minimumBytes) bytes")
        }
        return value
    }
}

public struct PortalConfigurationError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
