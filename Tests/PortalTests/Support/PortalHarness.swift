import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import StreamgatePluginAPI
@testable import StreamgatePortal
import Synchronization

extension JSONValue {
    subscript(_ key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    var string: String? { if case .string(let s) = self { s } else { nil } }
    var array: [JSONValue] { if case .array(let a) = self { a } else { [] } }
}

/// A real portal on a loopback port (Hummingbird, an in-memory database),
/// and a small HTTP client for its REST API.
final class PortalHarness: Sendable {
    static let credential = "cluster-credential-for-tests"
    static let password = "a password for tests"

    let portal: PortalServer
    let port: Int
    private let task: Task<Void, any Error>
    private let session = URLSession(configuration: .ephemeral)

    var baseURL: URL { URL(string: "http://127.0.0.1:\(port)")! }

    /// Starts a portal with users `admin` and `viewer` (cheap scrypt: tests log in often).
    static func start(databasePath: String = ":memory:", issuer: String = "streamgate-portal") async throws -> PortalHarness {
        var configuration = PortalConfiguration(clusterCredential: credential)
        configuration.port = 0
        configuration.databasePath = databasePath
        configuration.issuer = issuer
        configuration.maxTokenSeconds = 30 * 86_400
        let portal = try PortalServer(configuration: configuration)
        var admins = AdminStore(database: portal.database)
        admins.passwordHash = PasswordHash(rounds: 1 << 10, blockSize: 8, parallelism: 1)
        _ = try await admins.create(username: "admin", password: password, role: .admin)
        _ = try await admins.create(username: "viewer", password: password, role: .viewer)
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        var logger = Logger(label: "portal-test")
        logger.logLevel = .warning
        let app = Application(router: portal.router(adminStore: admins),
                              configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                              onServerRunning: { channel in
                                  continuation.yield(channel.localAddress?.port ?? 0)
                                  continuation.finish()
                              }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], logger: logger))
        let task = Task { try await group.run() }
        var port = 0
        for await value in ports { port = value }
        return PortalHarness(portal: portal, port: port, group: group, task: task)
    }

    private let group: ServiceGroup

    private init(portal: PortalServer, port: Int, group: ServiceGroup, task: Task<Void, any Error>) {
        self.portal = portal
        self.port = port
        self.group = group
        self.task = task
    }

    /// Runs `body` against a fresh portal, stopped afterwards whatever happens.
    static func with<T: Sendable>(_ body: (PortalHarness) async throws -> T) async throws -> T {
        let portal = try await start()
        do {
            let result = try await body(portal)
            await portal.stop()
            return result
        } catch {
            await portal.stop()
            throw error
        }
    }

    /// A graceful shutdown, as SIGTERM does in `streamgate portal`.
    func stop() async {
        await group.triggerGracefulShutdown()
        _ = await task.result
    }

    struct Reply: Sendable {
        let status: Int
        let json: JSONValue
        let headers: [String: String]
    }

    func request(_ method: String, _ path: String, _ body: JSONValue? = nil, token: String? = nil,
                 headers: [String: String] = [:]) async throws -> Reply
    {
        var request = URLRequest(url: URL(string: baseURL.absoluteString + path)!)
        request.httpMethod = method
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONEncoder().encode(body)
        }
        let (data, response) = try await session.data(for: request)
        let http = response as! HTTPURLResponse
        let json = data.isEmpty ? JSONValue.null : (try? JSONDecoder().decode(JSONValue.self, from: data)) ?? .string(String(decoding: data, as: UTF8.self))
        var fields: [String: String] = [:]
        for (name, value) in http.allHeaderFields { fields[String(describing: name).lowercased()] = String(describing: value) }
        return Reply(status: http.statusCode, json: json, headers: fields)
    }

    func login(_ username: String = "admin") async throws -> String {
        let reply = try await request("POST", "/api/v1/login", .object(["username": .string(username), "password": .string(Self.password)]))
        guard reply.status == 200, let token = reply.json["token"]?.string else { throw HarnessError("login failed: \(reply.status) \(reply.json)") }
        return token
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
