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
        do {
            try Data(content.utf8).write(to: URL(fileURLWithPath: temporary))
            guard rename(temporary, path) == 0 else {
                let reason = String(cString: strerror(errno))
                unlink(temporary)
                throw RestartFileError(reason: reason)
            }
        } catch let error as RestartFileError {
            CommandSupport.fail("Cannot write restart signal to \"\(path)\": \(error.reason).", exitCode: 1)
        } catch {
            let reason = (error as NSError).localizedFailureReason ?? error.localizedDescription
            CommandSupport.fail("Cannot write restart signal to \"\(path)\": \(reason).", exitCode: 1)
        }
        CommandSupport.printOutput("   INFO  Broadcasting Reverb restart signal.")
    }

    private struct RestartFileError: Error {
        var reason: String
    }
}
