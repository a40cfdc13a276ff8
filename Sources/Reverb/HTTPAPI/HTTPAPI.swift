import Logging
import NIOCore
import NIOHTTP1

/// The HTTP API routes (`http-api.md` §3): signature checks, then one handler per route group.
final class HTTPAPI: Sendable {
    let node: NodeContext
    let configuration: ReverbConfiguration
    let logger: Logger

    init(node: NodeContext, configuration: ReverbConfiguration, logger: Logger) {
        self.node = node
        self.configuration = configuration
        self.logger = logger
    }

    /// Answers one request whose route and method already matched.
    func respond(to request: HTTPAPIRequest, route: Route, eventLoop: any EventLoop) -> EventLoopFuture<HTTPResponse> {
        switch route {
        case .up:
            return eventLoop.makeSucceededFuture(.json(.ok, #"{"health":"OK"}"#))
        default:
            return eventLoop.makeSucceededFuture(.notFound)
        }
    }
}
