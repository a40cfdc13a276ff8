import Logging
import NIOCore
import NIOHTTP1
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The HTTP API routes (`http-api.md` §3): app lookup and signature checks, then one handler per
/// route group (`HTTPAPI+Events`, `HTTPAPI+Channels`, `HTTPAPI+Users`).
final class HTTPAPI: Sendable {
    let node: NodeContext
    let configuration: ReverbConfiguration
    let logger: Logger
    /// Unix seconds; injected by tests to check old signature vectors.
    let clock: @Sendable () -> Int64

    init(
        node: NodeContext, configuration: ReverbConfiguration, logger: Logger,
        clock: @escaping @Sendable () -> Int64 = { Int64(time(nil)) }
    ) {
        self.node = node
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
    }

    /// Answers one request whose route and method already matched (§2.5 order of checks).
    func respond(to request: HTTPAPIRequest, route: Route, eventLoop: any EventLoop) -> EventLoopFuture<HTTPResponse> {
        eventLoop.makeSucceededFuture(respond(to: request, route: route))
    }

    func respond(to request: HTTPAPIRequest, route: Route) -> HTTPResponse {
        let app: AppContext
        switch route {
        case .up:
            return .json(.ok, #"{"health":"OK"}"#)
        case .webSocket:
            return .notFound
        case .terminateUserConnectionsByKey:
            guard let key = request.query("auth_key"), let found = node.app(key: key) else {
                if request.query("auth_key") == nil || request.query("auth_signature") == nil
                    || request.query("auth_timestamp") == nil
                {
                    return RequestSignature.Failure.parametersMissing.response
                }
                return RequestSignature.Failure.invalid.response
            }
            app = found
        case .events(let id), .batchEvents(let id), .channels(let id), .channel(let id, _), .channelUsers(let id, _),
            .connections(let id), .terminateUserConnections(let id, _):
            guard let found = node.app(id: id) else {
                return .text(.notFound, "No matching application for ID [\(id)].")
            }
            app = found
        }
        if case .failure(let failure) = RequestSignature.verify(
            request, application: app.application, prefix: configuration.server.routePrefix, now: clock())
        {
            return failure.response
        }
        switch route {
        case .events:
            return triggerEvent(request, app: app)
        case .batchEvents:
            return triggerBatch(request, app: app)
        case .channels:
            return channels(request, app: app)
        case .channel(_, let channel):
            return channelInfo(channel, request: request, app: app)
        case .channelUsers(_, let channel):
            return users(of: channel, app: app)
        case .connections:
            return .json(.ok, #"{"connections":\#(app.connectionCount.load(ordering: .relaxed))}"#)
        case .terminateUserConnections(_, let userID), .terminateUserConnectionsByKey(let userID):
            return terminate(userID: userID, request: request, app: app)
        case .up, .webSocket:
            return .notFound
        }
    }

    /// The body as a JSON object, or nil (`400 Invalid JSON body.`).
    static func jsonObject(_ body: ByteBuffer) -> JSONObject? {
        guard body.readableBytes > 0, case .object(let object)? = try? JSONParser.parse(body.readableBytesView)
        else { return nil }
        return object
    }

    static let invalidJSONBody = HTTPResponse.text(.badRequest, "Invalid JSON body.")
}
