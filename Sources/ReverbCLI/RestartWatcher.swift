import Foundation
import Logging
import ServiceLifecycle

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
                if Task.isShuttingDownGracefully {
                    CommandSupport.printOutput("   INFO  Gracefully terminating connections.")
                }
                return
            }
            if Task.isShuttingDownGracefully {
                CommandSupport.printOutput("   INFO  Gracefully terminating connections.")
                return
            }
            if Self.read(path) != initialContent {
                CommandSupport.printOutput("   INFO  Stopping server on \(listenAddress()).")
                return
            }
        }
    }
}
