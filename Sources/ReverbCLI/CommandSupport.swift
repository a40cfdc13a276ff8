import ArgumentParser
import Foundation
import Reverb

/// Shared by the commands: loading the configuration and reporting failures with the spec's exit codes.
enum CommandSupport {
    static func loadConfiguration(_ flags: ConfigurationFlags) throws -> ReverbConfiguration {
        do {
            return try ConfigurationLoader.load(
                flags: flags, environment: ProcessInfo.processInfo.environment,
                workingDirectory: FileManager.default.currentDirectoryPath)
        } catch {
            fail(error.description, exitCode: error.exitCode)
        }
    }

    static func printError(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }

    static func printOutput(_ message: String) {
        FileHandle.standardOutput.write(Data((message + "\n").utf8))
    }

    /// Prints `message` on stderr and exits with `exitCode`.
    static func fail(_ message: String, exitCode: Int32) -> Never {
        printError(message)
        exit(exitCode)
    }
}
