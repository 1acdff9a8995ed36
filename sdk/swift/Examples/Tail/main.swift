// Prints every message of the endpoints named on the command line, across
// reconnects and node failover:
//
//     swift run streamgate-tail ws://127.0.0.1:8080/ws /scores/live/nba ...
//     STREAMGATE_TOKEN=...   a bearer token, if the gateway asks for one
//     STREAMGATE_URLS=ws://node1/ws,ws://node2/ws   (instead of the first argument, for a cluster)
//
// Stops on SIGINT or SIGTERM (a ServiceGroup's graceful shutdown closes the client).
import Foundation
import Logging
import ServiceLifecycle
import StreamgateClient

/// Prints the subscriptions' messages and notices; ends when the client closes.
struct Printer: Service {
    let client: StreamgateClient
    let endpoints: [String]

    func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                for await event in client.events {
                    if case .state(let state) = event { FileHandle.standardError.write(Data("[\(state)] \(client.node)\n".utf8)) }
                    if case .error(let error) = event { FileHandle.standardError.write(Data("error \(error)\n".utf8)) }
                }
            }
            for endpoint in endpoints {
                let subscription = client.subscribe(endpoint)
                group.addTask {
                    for await event in subscription.events {
                        if case .gap(_, _, let message) = event { FileHandle.standardError.write(Data("\(endpoint): \(message)\n".utf8)) }
                    }
                }
                group.addTask {
                    for try await message in subscription {
                        print("\(message.endpoint) #\(message.seq) \(message.text ?? "<\(message.payload.count) bytes>")")
                    }
                }
            }
        }
    }
}

let environment = ProcessInfo.processInfo.environment
var arguments = Array(CommandLine.arguments.dropFirst())
let urls = environment["STREAMGATE_URLS"].map { $0.split(separator: ",").map(String.init) } ?? Array(arguments.prefix(1))
if environment["STREAMGATE_URLS"] == nil { arguments = Array(arguments.dropFirst()) }
guard !urls.isEmpty, !arguments.isEmpty else {
    FileHandle.standardError.write(Data("usage: streamgate-tail WS_URL ENDPOINT...\n".utf8))
    exit(2)
}
let logger = Logger(label: "streamgate-tail")
let client = try StreamgateClient(configuration: .init(urls: urls, token: environment["STREAMGATE_TOKEN"].map { .fixed($0) } ?? .none))
let group = ServiceGroup(configuration: .init(
    // Shut down in reverse order: the client first, which ends the printer's subscriptions.
    services: [.init(service: Printer(client: client, endpoints: arguments)), .init(service: client)],
    gracefulShutdownSignals: [.sigint, .sigterm], logger: logger))
try await group.run()
