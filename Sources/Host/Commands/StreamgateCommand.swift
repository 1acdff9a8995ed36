import ArgumentParser

/// The `streamgate` command line: `serve` runs the gateway, `portal` the
/// portal, `check-config` validates a configuration file without starting
/// anything, `config-example` prints a complete commented one.
@main
struct StreamgateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streamgate",
        abstract: "Kafka topics and keys as secure WebSocket streaming APIs.",
        subcommands: [ServeCommand.self, CheckConfigCommand.self, ConfigExampleCommand.self, PortalCommand.self]
    )
}
