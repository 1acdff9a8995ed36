import Foundation
import HTTPTypes
import Hummingbird
import StreamgatePluginAPI

/// Every error the REST API answers, as JSON:
///
///     {"error": {"code": "invalid_field", "message": "...", "field": "endpoints[0].key"}}
///
/// `field` names the offending part of the request when there is one.
public struct PortalError: Error, HTTPResponseError, CustomStringConvertible {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    public let field: String?
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, code: String, _ message: String, field: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
    }

    public var description: String { "\(code): \(message)" + (field.map { " (\($0))" } ?? "") }

    static func invalid(_ error: ConfigurationError) -> PortalError {
        PortalError(.badRequest, code: "invalid_field", error.description, field: error.key)
    }

    static func badRequest(_ message: String, field: String? = nil) -> PortalError {
        PortalError(.badRequest, code: "invalid_request", message, field: field)
    }

    static func notFound(_ message: String) -> PortalError { PortalError(.notFound, code: "not_found", message) }

    static func conflict(_ message: String, field: String? = nil) -> PortalError {
        PortalError(.conflict, code: "conflict", message, field: field)
    }

    static let unauthenticated = PortalError(.unauthorized, code: "unauthenticated",
                                             "log in first: POST /api/v1/login, then send Authorization: Bearer <token>")

    static func forbidden(_ message: String) -> PortalError { PortalError(.forbidden, code: "forbidden", message) }

    static func `internal`(_ message: String) -> PortalError { PortalError(.internalServerError, code: "internal", message) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var error: [String: JSONValue] = ["code": .string(code), "message": .string(message)]
        if let field { error["field"] = .string(field) }
        var response = JSONBody.response(.object(["error": .object(error)]), status: status)
        for field in headers { response.headers.append(field) }
        return response
    }
}
