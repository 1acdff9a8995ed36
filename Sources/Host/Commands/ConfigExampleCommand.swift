import ArgumentParser

/// `streamgate config-example`: prints a complete configuration, every key
/// with its default and a comment (docs/streamgate.example.jsonc), that
/// `check-config` accepts: a starting point to copy and edit.
struct ConfigExampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config-example", abstract: "Print a complete, commented example configuration.")

    func run() {
        print(EmbeddedAssets.configurationExample, terminator: "")
    }
}
