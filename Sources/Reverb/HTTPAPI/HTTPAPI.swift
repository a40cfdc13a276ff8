import Logging
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The HTTP API routes (`http-api.md` §3): app lookup and signature checks, then one handler per
/// route group (`HTTPAPI+Events`, `HTTPAPI+Channels`).
final class HTTPAPI: Sendable {
    let apps: AppRegistry
    let pubSub: any PubSubProvider
    let configuration: ReverbConfiguration
    let logger: Logger
    /// Unix seconds; injected by tests to check old signature vectors.
    let clock: @Sendable () -> Int64

    /// A route's answer: ready now, or built from channel counts gathered across the cluster.
    enum Answer {
        case now(HTTPResponse)
        case afterQuery(ClusterQueryRequest, @Sendable (ClusterChannelView) -> HTTPResponse)
    }

    /// Unix seconds from the system clock.
    static let systemClock: @Sendable () -> Int64 = { Int64(time(nil)) }

    init(
        apps: AppRegistry, pubSub: any PubSubProvider, configuration: ReverbConfiguration, logger: Logger,
        clock: @escaping @Sendable () -> Int64 = HTTPAPI.systemClock
    ) {
        self.apps = apps
        self.pubSub = pubSub
        self.configuration = configuration
        self.logger = logger
        self.clock = clock
    }

    /// Answers one request whose route and method already matched (§2.5 order of checks).
    func respond(to request: HTTPAPIRequest, route: Route, eventLoop: any EventLoop) -> EventLoopFuture<HTTPResponse> {
        let app: AppContext
        switch authenticate(request, route: route) {
        case .failure(let response): return eventLoop.makeSucceededFuture(response)
        case .success(let found): app = found
        }
        return respond(to: request, route: route, app: app, eventLoop: eventLoop)
    }

    /// Answers a request already authenticated for `app` (the HTTP API after its signature check,
    /// the dashboard's test events after its session and CSRF checks).
    func respond(
        to request: HTTPAPIRequest, route: Route, app: AppContext, eventLoop: any EventLoop
    ) -> EventLoopFuture<HTTPResponse> {
        switch answer(request, route: route, app: app) {
        case .now(let response):
            guard route.publishes, app.fanout.backlog.isOverloaded else {
                return eventLoop.makeSucceededFuture(response)
            }
            // Delivery is behind (`style.md` §4.7): the answer waits until the shards catch up, so
            // a publisher sends its next event only then and overload never becomes a queue.
            let promise = eventLoop.makePromise(of: HTTPResponse.self)
            app.fanout.backlog.whenDrained(on: eventLoop) { promise.succeed(response) }
            return promise.futureResult
        case .afterQuery(.connections, let build):
            let local = app.queryResult(.connections, scope: .local)
            return pubSub.gather(app: app.id, request: .connections, local: local, on: eventLoop).map { view in
                var response = build(view)
                if view.partial { response.extraHeaders.append(("X-Reverb-Partial", "1")) }
                return response
            }
        case .afterQuery(let query, let build):
            // Channels, counts and users are replicated (`scaling.md` §4.6): answered here, at once;
            // partial while this node cannot hear the others.
            var response = build(ClusterChannelView(merging: app.queryResult(query, scope: .cluster)))
            if pubSub.stateIsPartial { response.extraHeaders.append(("X-Reverb-Partial", "1")) }
            return eventLoop.makeSucceededFuture(response)
        }
    }

    /// The same, answered from this node alone (tests, and every route without scaling).
    func respond(to request: HTTPAPIRequest, route: Route) -> HTTPResponse {
        switch authenticate(request, route: route) {
        case .failure(let response):
            return response
        case .success(let app):
            switch answer(request, route: route, app: app) {
            case .now(let response):
                return response
            case .afterQuery(let query, let build):
                return build(ClusterChannelView(merging: app.queryResult(query, scope: .cluster)))
            }
        }
    }

    /// `/up`, app lookup and request signing; the app on success, else the response to send.
    private func authenticate(_ request: HTTPAPIRequest, route: Route) -> Result<AppContext, HTTPResponse> {
        let app: AppContext
        switch route {
        case .up:
            if pubSub.isDegraded {
                return .failure(.json(.ok, #"{"health":"DEGRADED","redis":"disconnected"}"#))
            }
            return .failure(.json(.ok, #"{"health":"OK"}"#))
        case .webSocket, .metrics, .dashboard:
            return .failure(.notFound)
        case .terminateUserConnectionsByKey:
            guard request.query("auth_key") != nil, request.query("auth_signature") != nil,
                request.query("auth_timestamp") != nil
            else { return .failure(RequestSignature.Failure.parametersMissing.response) }
            guard let key = request.query("auth_key"), let found = apps.app(key: key) else {
                return .failure(RequestSignature.Failure.invalid.response)
            }
            app = found
        case .events(let id), .batchEvents(let id), .channels(let id), .channel(let id, _), .channelUsers(let id, _),
            .connections(let id), .terminateUserConnections(let id, _):
            guard let found = apps.app(id: id) else {
                return .failure(.text(.notFound, "No matching application for ID [\(id)]."))
            }
            app = found
        }
        if case .failure(let failure) = RequestSignature.verify(
            request, application: app.application, prefix: configuration.server.routePrefix, now: clock())
        {
            return .failure(failure.response)
        }
        return .success(app)
    }

    private func answer(_ request: HTTPAPIRequest, route: Route, app: AppContext) -> Answer {
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
            return .afterQuery(.connections) { view in .json(.ok, #"{"connections":\#(view.connections)}"#) }
        case .terminateUserConnections(_, let userID), .terminateUserConnectionsByKey(let userID):
            return .now(terminate(userID: userID, request: request, app: app))
        case .up, .webSocket, .metrics, .dashboard:
            return .now(.notFound)
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
