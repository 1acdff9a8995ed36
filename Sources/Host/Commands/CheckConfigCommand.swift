import ArgumentParser
import Logging

/// `streamgate check-config FILE`: validates the file and every plugin's
/// options, prints the first problem naming its key, and exits non-zero.
struct CheckConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate a configuration file and exit.")

    @Argument(help: "Path of the JSON configuration file.")
    var file: String

    func run() async throws {
        let configuration = try GatewayConfiguration.loadOrExit(path: file)
        LogSetup.bootstrap(level: .error)
        do {
            _ = try PluginSet(configuration: configuration, registry: .builtin(checkingOnly: true))
        } catch {
            printError(error.description)
            throw ExitCode(2)
        }
        print("\(file): configuration is valid")
    }
}

/// Writes one line to standard error.
func printError(_ line: String) {
    FileHandleStderr.write("error: " + line + "\n")
}
