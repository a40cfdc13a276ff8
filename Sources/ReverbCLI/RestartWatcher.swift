import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// Watches the restart file every 5 s; on a change it ends, which shuts the service group down
/// gracefully (`config.md` §6.2). On a shutdown signal it announces the termination.
struct RestartWatcher: Service {
    static let interval = Duration.seconds(5)

    let path: String
    let initialContent: String
    /// `host:port` once bound, for the stop message.
    let listenAddress: @Sendable () -> String

    init(path: String, listenAddress: @escaping @Sendable () -> String) {
        self.path = path
        self.listenAddress = listenAddress
        self.initialContent = Self.read(path)
    }

    /// Prints the shutdown line; from now on a second SIGINT or SIGTERM exits at once (`config.md` §6.1).
    static func announceShutdown() async {
        CommandSupport.printOutput("   INFO  Gracefully terminating connections.")
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        Task.detached {
            for await _ in signals {
                CommandSupport.printOutput("   INFO  Second signal: exiting now.")
                exit(0)
            }
        }
    }

    static func read(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    func run() async throws {
        while true {
            do {
                try await cancelWhenGracefulShutdown {
                    try await Task.sleep(for: Self.interval)
                }
            } catch {
                if Task.isShuttingDownGracefully { await Self.announceShutdown() }
                return
            }
            if Task.isShuttingDownGracefully {
                await Self.announceShutdown()
                return
            }
            if Self.read(path) != initialContent {
                CommandSupport.printOutput("   INFO  Stopping server on \(listenAddress()).")
                return
            }
        }
    }
}
