import ArgumentParser
import Logging
import ServiceLifecycle

/// `streamgate serve --config FILE`: runs the gateway until SIGINT/SIGTERM.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the gateway.")

    @Option(name: .long, help: "Path of the JSON configuration file.")
    var config: String

    func run() async throws {
        let configuration = try GatewayConfiguration.loadOrExit(path: config)
        LogSetup.bootstrap(level: configuration.logLevel, format: configuration.logFormat)
        let logger = Logger(label: "streamgate")
        let gateway: Gateway
        do {
            gateway = try Gateway(configuration: configuration, logger: logger)
        } catch let error as ConfigurationErrorInFile {
            printError(error.description)
            throw ExitCode(2)
        } catch {
            printError("\(config): \(error)")
            throw ExitCode(1)
        }
        try await gateway.run()
    }
}
