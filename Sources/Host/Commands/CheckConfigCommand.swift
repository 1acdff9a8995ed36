import ArgumentParser
import Foundation
import Logging

/// `streamgate check-config FILE`: validates the file and every plugin's
/// options, prints every problem it finds (each naming its key), and exits
/// non-zero when there is one.
struct CheckConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate a configuration file and exit.")

    @Argument(help: "Path of the JSON configuration file.")
    var file: String

    func run() async throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            printError("\(file): cannot read the file")
            throw ExitCode(2)
        }
        LogSetup.bootstrap(level: .error)
        let problems = ConfigurationChecker.problems(in: data, file: file) { .builtin(checkingOnly: true) }
        guard problems.isEmpty else {
            for problem in problems { printError(problem.description) }
            if problems.count > 1 { FileHandleStderr.write("\(problems.count) problems\n") }
            throw ExitCode(2)
        }
        print("\(file): configuration is valid")
    }
}

/// Writes one line to standard error.
func printError(_ line: String) {
    FileHandleStderr.write("error: " + line + "\n")
}
