import Foundation
import StreamgatePluginAPI

/// What a gateway knows from the portal: the document of
/// `GET /api/v1/gateway/state` (docs/portal.md), parsed and checked once
/// when it arrives, so the mapper and the authorizer only look things up.
final class PortalState: Sendable {
    struct Endpoint: Sendable {
        let api: String
        let path: EndpointTemplate
        let topic: String
        let key: KeyTemplate
        let actions: Set<EndpointAction>
    }

    let revision: Int64
    let issuer: String
    let audience: String?
    /// Every endpoint, in the portal's order (paths never overlap, so at most one matches).
    let endpoints: [Endpoint]
    /// The endpoints of each API, by name.
    let apis: [String: [Endpoint]]
    /// On each topic, its endpoints (records are mapped back through these).
    let byTopic: [String: [Endpoint]]
    /// The portal's public signing keys, as the JWKS JSON.
    let jwks: Data
    /// The `kid` of every key in `jwks`.
    let keyIDs: Set<String>
    /// Revoked token ids (`jti`) that have not expired.
    let revoked: Set<String>
    /// The document as received, kept on disk for a start without the portal.
    let document: Data

    /// Parses the portal's document; the error names the part that is wrong.
    init(document: Data) throws {
        let json: JSONValue
        do {
            json = try JSONDecoder().decode(JSONValue.self, from: document)
        } catch {
            throw ConfigurationError(key: "(gateway state)", problem: "not valid JSON")
        }
        let root = try ConfigSection(path: "state", value: json)
        guard case .number(let revision)? = root.raw("revision"), revision >= 0, revision < 9e15 else {
            throw ConfigurationError(key: "state.revision", value: nil, expected: "a number")
        }
        self.revision = Int64(revision)
        issuer = try root.requiredString("issuer")
        audience = try root.string("audience")
        guard case .array(let apiItems)? = root.raw("apis") else {
            throw ConfigurationError(key: "state.apis", value: nil, expected: "an array")
        }
        var endpoints: [Endpoint] = []
        var apis: [String: [Endpoint]] = [:]
        for (i, item) in apiItems.enumerated() {
            let api = try ConfigSection(path: "state.apis[\(i)]", value: item)
            let name = try api.requiredString("name")
            guard case .array(let endpointItems)? = api.raw("endpoints") else {
                throw ConfigurationError(key: api.keyPath("endpoints"), value: nil, expected: "an array")
            }
            var ofAPI: [Endpoint] = []
            for (j, endpointItem) in endpointItems.enumerated() {
                let section = try ConfigSection(path: "\(api.keyPath("endpoints"))[\(j)]", value: endpointItem)
                let endpoint = try Self.endpoint(section, api: name)
                ofAPI.append(endpoint)
                endpoints.append(endpoint)
            }
            apis[name] = ofAPI
        }
        self.endpoints = endpoints
        self.apis = apis
        byTopic = Dictionary(grouping: endpoints, by: \.topic)
        guard let jwks = root.raw("jwks"), case .object = jwks else {
            throw ConfigurationError(key: "state.jwks", value: nil, expected: "a JWKS object")
        }
        self.jwks = try JSONEncoder().encode(jwks)
        var keyIDs: Set<String> = []
        if case .object(let set) = jwks, case .array(let keys)? = set["keys"] {
            for case .object(let key) in keys { if case .string(let kid)? = key["kid"] { keyIDs.insert(kid) } }
        }
        self.keyIDs = keyIDs
        revoked = Set(try root.stringArray("revoked") ?? [])
        self.document = document
    }

    private static func endpoint(_ section: ConfigSection, api: String) throws -> Endpoint {
        let path: EndpointTemplate, key: KeyTemplate
        do {
            path = try EndpointTemplate(try section.requiredString("path"))
            key = try KeyTemplate(try section.requiredString("key"))
        } catch let error as EndpointError {
            throw ConfigurationError(key: section.path, problem: error.reason)
        }
        let topic = try section.requiredString("topic")
        let actions = Set((try section.stringArray("actions") ?? []).compactMap(EndpointAction.init(rawValue:)))
        return Endpoint(api: api, path: path, topic: topic, key: key, actions: actions)
    }

    /// The endpoint a client's path names, and its parameter values.
    func endpoint(forPath path: String) -> (Endpoint, [String: String])? {
        for endpoint in endpoints {
            if let values = endpoint.path.match(path) { return (endpoint, values) }
        }
        return nil
    }
}
