import ArgumentParser
import Logging
import ServiceLifecycle
import StreamgatePortal

/// `streamgate portal --config portal.json`: runs the portal (one per
/// cluster) until SIGINT/SIGTERM. Gateways follow it with the `portal`
/// mapper and authorizer.
struct PortalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "portal", abstract: "Run the portal: APIs, tokens and keys for a cluster.")

    @Option(name: .long, help: "Path of the portal's JSON configuration file.")
    var config: String

    func run() async throws {
        let configuration: PortalConfiguration
        do {
            configuration = try PortalConfiguration.load(path: config)
        } catch {
            printError("\(error)")
            throw ExitCode(2)
        }
        LogSetup.bootstrap(level: Logger.Level(rawValue: configuration.logLevel) ?? .info)
        let logger = Logger(label: "streamgate.portal")
        let portal = try PortalServer(configuration: configuration)
        try await portal.bootstrap(logger: logger)
        logger.notice("portal listening", metadata: ["address": "\(configuration.tls == nil ? "http" : "https")://\(configuration.host):\(configuration.port)",
                                                     "database": "\(configuration.databasePath)"])
        let group = ServiceGroup(configuration: .init(services: [try portal.application(logger: logger)],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
