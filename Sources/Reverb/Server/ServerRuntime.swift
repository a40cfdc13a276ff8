import Logging
import NIOCore

/// What every connection handler of one server needs, built once at start-up.
final class ServerRuntime: Sendable {
    let configuration: ReverbConfiguration
    let node: NodeContext
    let logger: Logger
    let httpAPI: HTTPAPI
    /// The path prefix as segments (`ws/v1` → `["ws", "v1"]`).
    let prefixSegments: [String]
    /// The WebSocket decoder's hard frame cap: the largest app `max_message_size` (`style.md` §4.4).
    let maxFrameSize: Int

    init(configuration: ReverbConfiguration, eventLoops: [any EventLoop], logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.node = NodeContext(applications: configuration.apps, eventLoops: eventLoops, logger: logger)
        self.prefixSegments = configuration.server.path.split(separator: "/").map(String.init)
        self.maxFrameSize = max(125, configuration.apps.map(\.effectiveMaxMessageSize).max() ?? 10_000)
        self.httpAPI = HTTPAPI(node: node, configuration: configuration, logger: logger)
    }
}
