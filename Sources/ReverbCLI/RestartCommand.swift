import ArgumentParser
import Foundation
import Reverb

/// `reverb restart`: writes the restart file every running server watches (`config.md` §6.2).
struct RestartCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restart",
        abstract: "Tell running servers to restart gracefully.",
        version: "swift-reverb \(ReverbCommand.version)"
    )

    @Option(help: "Configuration file.")
    var config: String?

    func run() throws {
        let configuration = try CommandSupport.loadConfiguration(ConfigurationFlags(configFile: config))
        let path = configuration.restartFile
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let content = "\(now.tv_sec).\(String(format: "%09ld", now.tv_nsec))\n"
        let temporary = path + ".\(getpid()).tmp"
        if let reason = Self.write(content, to: temporary) ?? Self.rename(temporary, to: path) {
            unlink(temporary)
            CommandSupport.fail("Cannot write restart signal to \"\(path)\": \(reason).", exitCode: 1)
        }
        CommandSupport.printOutput("   INFO  Broadcasting Reverb restart signal.")
    }

    /// Writes `content` to a new file; the OS's reason on failure.
    private static func write(_ content: String, to path: String) -> String? {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { return String(cString: strerror(errno)) }
        defer { close(descriptor) }
        let bytes = Array(content.utf8)
        let written = bytes.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
        return written == bytes.count ? nil : String(cString: strerror(errno))
    }

    private static func rename(_ source: String, to destination: String) -> String? {
        Foundation.rename(source, destination) == 0 ? nil : String(cString: strerror(errno))
    }
}
