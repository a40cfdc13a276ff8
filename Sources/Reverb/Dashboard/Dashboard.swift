import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import ReverbRedis
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The dashboard and debug console at `{prefix}/dashboard` (docs.md "Dashboard"): login, session
/// and CSRF checks, the JSON routes, and the once-a-second sampling behind the overview.
///
/// The rules live in small types (`DashboardSessionSigner`, `DashboardLoginLimiter`,
/// `DashboardHistory`, `DebugStreamBuffer`); this class applies them to requests. The live stream
/// itself is `DashboardStreamHandler`.
final class Dashboard: Sendable {
    /// Open streams at most, over every session.
    static let maximumStreams = 32

    struct Stream {
        var channel: any Channel
        var appID: String?
    }

    /// What a stream may show: one app's activity, or (password sessions without `app`) only the
    /// node-wide overview.
    struct StreamGrant {
        var app: AppContext?
        var session: DashboardSessionSigner.Session
    }

    let configuration: DashboardConfiguration
    let signer: DashboardSessionSigner
    let apps: AppRegistry
    private let httpAPI: HTTPAPI
    private let fanout: Fanout
    let cluster: ClusterNode?
    /// `{prefix}/dashboard`.
    let basePath: String
    private let secureCookie: Bool
    /// Unix seconds.
    private let clock: @Sendable () -> Int64
    private let startedAt: Int64
    private let host: String
    private let limiter = NIOLockedValueBox(DashboardLoginLimiter())
    /// By scope: `*` for the node, else an app id.
    private let histories = NIOLockedValueBox([String: DashboardHistory]())
    private let streams = NIOLockedValueBox([ObjectIdentifier: Stream]())

    init(
        configuration: ReverbConfiguration, apps: AppRegistry, httpAPI: HTTPAPI, fanout: Fanout, cluster: ClusterNode?,
        signer: DashboardSessionSigner = DashboardSessionSigner(key: DashboardSessionSigner.randomKey()),
        clock: @escaping @Sendable () -> Int64 = HTTPAPI.systemClock
    ) {
        self.configuration = configuration.dashboard
        self.apps = apps
        self.httpAPI = httpAPI
        self.fanout = fanout
        self.cluster = cluster
        self.signer = signer
        self.clock = clock
        self.startedAt = clock()
        self.host = ClusterNode.hostName()
        self.secureCookie = configuration.server.tls != nil
        self.basePath = configuration.server.routePrefix + "/dashboard"
    }

    // MARK: Requests

    /// Answers a dashboard request (the stream excepted: `openStream`).
    /// - Parameter client: the client's IP address, for the login rate limit.
    func respond(
        to request: HTTPAPIRequest, route: DashboardRoute, client: String, eventLoop: any EventLoop
    ) -> EventLoopFuture<HTTPResponse> {
        switch route {
        case .login:
            return eventLoop.makeSucceededFuture(
                request.method == "POST" ? logIn(request, client: client) : loginPage(request))
        case .page:
            guard session(of: request) != nil else { return eventLoop.makeSucceededFuture(redirect(to: "/login")) }
            return eventLoop.makeSucceededFuture(Self.secured(.html(DashboardAssets.page(basePath: basePath))))
        default:
            break
        }
        let session: DashboardSessionSigner.Session
        switch authorize(request, route: route) {
        case .failure(let response): return eventLoop.makeSucceededFuture(response)
        case .success(let found): session = found
        }
        switch route {
        case .asset(let name):
            return eventLoop.makeSucceededFuture(Self.secured(DashboardAssets.asset(named: name) ?? .notFound))
        case .logout:
            var response = Self.json(.ok, .object(JSONObject()))
            response.extraHeaders.append(("Set-Cookie", cookie(value: "", maxAge: 0)))
            return eventLoop.makeSucceededFuture(response)
        case .session:
            return eventLoop.makeSucceededFuture(Self.json(.ok, describe(session)))
        case .overview:
            switch scope(request.query("app"), session: session) {
            case .failure(let response): return eventLoop.makeSucceededFuture(response)
            case .success(let app):
                return eventLoop.makeSucceededFuture(
                    Self.json(.ok, overview(app: app, session: session, history: true)))
            }
        case .channels(let id):
            return eventLoop.makeSucceededFuture(
                visibleApp(id, session: session).map { channels(of: $0, prefix: request.query("prefix") ?? "") }
                    .merged)
        case .channel(let id, let channel):
            return eventLoop.makeSucceededFuture(
                visibleApp(id, session: session).map { self.channel(channel, of: $0) }.merged)
        case .events(let id):
            switch visibleApp(id, session: session) {
            case .failure(let response): return eventLoop.makeSucceededFuture(response)
            case .success(let app):
                // Exactly an HTTP API event: the same validation, delivery and answer.
                return httpAPI.respond(to: request, route: .events(appID: id), app: app, eventLoop: eventLoop)
                    .map(Self.secured)
            }
        case .login, .page, .stream:
            return eventLoop.makeSucceededFuture(Self.secured(.notFound))
        }
    }

    /// The checks of a stream request; the grant to serve it, or the refusal.
    func openStream(_ request: HTTPAPIRequest) -> Result<StreamGrant, HTTPResponse> {
        let session: DashboardSessionSigner.Session
        switch authorize(request, route: .stream) {
        case .failure(let response): return .failure(response)
        case .success(let found): session = found
        }
        let app: AppContext?
        switch scope(request.query("app"), session: session) {
        case .failure(let response): return .failure(response)
        case .success(let found): app = found
        }
        guard streams.withLockedValue({ $0.count }) < Self.maximumStreams else {
            return .failure(Self.error(.serviceUnavailable, "Too many dashboard streams are open."))
        }
        return .success(StreamGrant(app: app, session: session))
    }

    /// The session of a request's cookie, if valid and not expired.
    func session(of request: HTTPAPIRequest) -> DashboardSessionSigner.Session? {
        guard let token = DashboardSessionSigner.cookie(in: request.headers["cookie"]) else { return nil }
        return signer.verify(token, now: clock())
    }

    /// Session, then CSRF for routes that change state.
    private func authorize(_ request: HTTPAPIRequest, route: DashboardRoute) -> Result<
        DashboardSessionSigner.Session, HTTPResponse
    > {
        guard let session = session(of: request) else {
            return .failure(Self.error(.unauthorized, "Log in to the dashboard first."))
        }
        if route.changesState && !signer.checkCSRF(request.headers.first(name: "x-csrf-token"), session: session) {
            return .failure(Self.error(.forbidden, "Missing or wrong CSRF token (X-CSRF-Token)."))
        }
        return .success(session)
    }

    /// The app of `id` if the session may see it. Unknown and hidden apps look the same to an app
    /// session, so it learns nothing about other apps.
    private func visibleApp(_ id: String, session: DashboardSessionSigner.Session) -> Result<AppContext, HTTPResponse> {
        guard session.canSee(appID: id) else {
            return .failure(Self.error(.forbidden, "This session cannot see app \(id)."))
        }
        guard let app = apps.app(id: id) else { return .failure(Self.error(.notFound, "No app \(id).")) }
        return .success(app)
    }

    /// `?app=`: that app; without it an app session's own app, or nothing (node-wide) for the password.
    private func scope(_ appID: String?, session: DashboardSessionSigner.Session) -> Result<AppContext?, HTTPResponse> {
        if let appID, !appID.isEmpty { return visibleApp(appID, session: session).map { $0 } }
        if case .app(let id) = session.scope { return visibleApp(id, session: session).map { $0 } }
        return .success(nil)
    }

    private func describe(_ session: DashboardSessionSigner.Session) -> JSONValue {
        let visible = apps.all.filter { session.canSee(appID: $0.id) }
        let scope: String
        switch session.scope {
        case .all: scope = "all"
        case .app: scope = "app"
        }
        return .object(
            JSONObject([
                ("scope", .string(scope)), ("apps", .array(visible.map { .string($0.id) })),
                ("csrf_token", .string(signer.csrfToken(for: session))),
                ("expires_at", .number(String(session.expiresAt))), ("cluster", .bool(cluster != nil)),
            ]))
    }

    // MARK: Login

    private func loginPage(_ request: HTTPAPIRequest, message: String? = nil) -> HTTPResponse {
        if message == nil && session(of: request) != nil { return redirect(to: "") }
        return Self.secured(
            .html(
                DashboardAssets.login(
                    basePath: basePath, message: message, offersPassword: configuration.password != nil)))
    }

    private func logIn(_ request: HTTPAPIRequest, client: String) -> HTTPResponse {
        let now = NIODeadline.now()
        if let wait = limiter.withLockedValue({ $0.retryAfter(address: client, now: now) }) {
            var response = loginPage(request, message: "Too many failed logins. Try again in \(wait) s.")
            response.status = .tooManyRequests
            response.extraHeaders.append(("Retry-After", String(wait)))
            return response
        }
        let form = HTTPAPIRequest.parseQuery(String(buffer: request.body))
        func field(_ name: String) -> String { form.last { $0.name == name }?.value ?? "" }
        var scope: DashboardSessionSigner.Session.Scope?
        let password = field("password")
        if !password.isEmpty {
            if let expected = configuration.password, Signature.constantTimeEquals(password, expected) {
                scope = .all
            }
        } else {
            let appID = field("app_id")
            let secret = field("secret")
            // Compared even for an unknown app, so the time taken does not tell which ids exist.
            let expected = apps.app(id: appID)?.application.secret
            if Signature.constantTimeEquals(secret, expected ?? "\u{0}" + secret), expected != nil, !secret.isEmpty {
                scope = .app(appID)
            }
        }
        guard let scope else {
            limiter.withLockedValue { $0.recordFailure(address: client, now: now) }
            var response = loginPage(request, message: "Wrong app id and secret, or wrong password.")
            response.status = .unauthorized
            return response
        }
        limiter.withLockedValue { $0.recordSuccess(address: client) }
        let (token, _) = signer.issue(scope: scope, now: clock())
        var response = redirect(to: "")
        response.extraHeaders.append(("Set-Cookie", cookie(value: token, maxAge: DashboardSessionSigner.lifetime)))
        return response
    }

    private func cookie(value: String, maxAge: Int64) -> String {
        "\(DashboardSessionSigner.cookieName)=\(value); Path=\(basePath); Max-Age=\(maxAge); HttpOnly; SameSite=Strict"
            + (secureCookie ? "; Secure" : "")
    }

    private func redirect(to path: String) -> HTTPResponse {
        var response = HTTPResponse.text(.seeOther, "See \(basePath + path).")
        response.extraHeaders.append(("Location", basePath + path))
        return Self.secured(response)
    }

    // MARK: Channels

    private func channels(of app: AppContext, prefix: String) -> HTTPResponse {
        let view = ClusterChannelView(
            merging: app.queryResult(.channels(prefix: prefix, names: nil, users: false), scope: .cluster))
        var list: [JSONValue] = []
        for name in view.order.sorted() where !ChannelName.isServerToUser(name) {
            let snapshot = view.snapshot(of: name, app: app, includeCache: false)
            guard snapshot.occupied else { continue }
            list.append(
                .object(
                    JSONObject([
                        ("name", .string(name)), ("subscribers", .number(String(snapshot.subscriptionCount))),
                        ("kind", .string(Self.kindName(name))),
                    ])))
        }
        var response = Self.json(.ok, .object(JSONObject([("channels", .array(list))])))
        if cluster?.stateIsPartial == true { response.extraHeaders.append(("X-Reverb-Partial", "1")) }
        return response
    }

    private func channel(_ name: String, of app: AppContext) -> HTTPResponse {
        let view = ClusterChannelView(
            merging: app.queryResult(.channels(prefix: "", names: [name], users: true), scope: .cluster))
        let snapshot = view.snapshot(of: name, app: app, includeCache: true)
        var object = JSONObject([
            ("name", .string(name)), ("kind", .string(Self.kindName(name))),
            ("subscribers", .number(String(snapshot.subscriptionCount))),
        ])
        if ChannelName.kind(of: name).isPresence { object["members"] = .array(snapshot.users) }
        if ChannelName.kind(of: name).isCache {
            if let cache = snapshot.cache {
                object["cached_event"] = cache.payload
                object["cache_ttl"] = .number(String(cache.ttl))
            } else {
                object["cached_event"] = .null
            }
        }
        return Self.json(.ok, .object(object))
    }

    private static func kindName(_ channel: String) -> String {
        let kind = ChannelName.kind(of: channel)
        let base =
            kind.isPresence
            ? "presence"
            : channel.hasPrefix("private-encrypted-")
                ? "encrypted"
                : kind.requiresSignature
                    ? "private" : "public"
        return kind.isCache ? base + " cache" : base
    }

    // MARK: Overview

    /// The latest figures of this node (the app's, or the node's), its peers, and the history
    /// when asked.
    func overview(app: AppContext?, session: DashboardSessionSigner.Session, history: Bool) -> JSONValue {
        let key = app?.id ?? "*"
        let recorded = histories.withLockedValue { $0[key] }
        var object = JSONObject([
            ("time", .number(String(ClusterNode.wallClockMilliseconds()))),
            ("app", app.map { .string($0.id) } ?? .null),
        ])
        object["latest"] = recorded?.latest?.json ?? .null
        if history { object["history"] = .array(recorded?.samples.map(\.json) ?? []) }
        var nodes: [JSONValue] = [.object(localNode(app: app))]
        if let cluster {
            for (id, stats) in cluster.dashboardPeers.fresh() {
                nodes.append(.object(DashboardPeerTable.describe(node: id, stats: stats, app: app?.id)))
            }
        }
        object["nodes"] = .array(nodes)
        return .object(object)
    }

    private func localNode(app: AppContext?) -> JSONObject {
        let connections =
            app.map { $0.connectionCount.load(ordering: .relaxed) }
            ?? apps.all.reduce(0) {
                $0 + $1.connectionCount.load(ordering: .relaxed)
            }
        var node = JSONObject([
            ("id", .string(cluster?.nodeID ?? "")), ("host", .string(host)), ("self", .bool(true)),
            ("uptime", .number(String(max(0, clock() - startedAt)))), ("connections", .number(String(connections))),
        ])
        if let cluster {
            node["publisher"] = .bool(cluster.publisher.linkState.isConnected)
            node["subscriber"] = .bool(cluster.subscriber.linkState.isConnected)
            node["queue"] = .number(String(cluster.publisher.queuedMessageCount))
        }
        return node
    }

    /// Samples every scope once (every second, on one loop), and in a cluster tells the peers which
    /// apps this node's consoles watch.
    func tick() {
        let appCount = apps.all.count
        let inboxDrops = fanout.inboxes.reduce(0) { $0 + $1.droppedCount }
        _ = fanout.onEveryShard { $0.metrics }.map { loops in
            self.record(LoopMetrics.total(loops, appCount: appCount), inboxDrops: inboxDrops)
        }
        guard let cluster else { return }
        let watched = Set(streams.withLockedValue { $0.values.compactMap(\.appID) })
        if !watched.isEmpty || streams.withLockedValue({ !$0.isEmpty }) {
            cluster.announceDebugWatch(apps: watched.sorted())
        }
    }

    private func record(_ loops: LoopMetrics, inboxDrops: Int) {
        let time = ClusterNode.wallClockMilliseconds()
        let dropped = loops.slowConsumerDrops + inboxDrops
        var total = (connections: 0, channels: 0, counters: DashboardCounters())
        var perApp: [(String, Int, Int, DashboardCounters)] = []
        for app in apps.all {
            let counts = app.index < loops.apps.count ? loops.apps[app.index] : LoopMetrics.App()
            let counters = DashboardCounters(
                messagesIn: counts.messagesReceived, messagesOut: counts.messagesSent, httpCalls: counts.httpCalls)
            let connections = app.connectionCount.load(ordering: .relaxed)
            let channels = app.directory.withState { $0.occupiedChannels().count }
            perApp.append((app.id, connections, channels, counters))
            total.connections += connections
            total.channels += channels
            total.counters.messagesIn += counters.messagesIn
            total.counters.messagesOut += counters.messagesOut
            total.counters.httpCalls += counters.httpCalls
        }
        let slowCloses = loops.slowConsumerDisconnections
        histories.withLockedValue { histories in
            for (id, connections, channels, counters) in perApp + [
                ("*", total.connections, total.channels, total.counters)
            ] {
                histories[id, default: DashboardHistory()].record(
                    time: time, connections: connections, channels: channels, counters: counters, dropped: dropped,
                    slowConsumerCloses: slowCloses)
            }
        }
    }

    // MARK: Streams

    func register(_ stream: Stream, id: ObjectIdentifier) {
        streams.withLockedValue { $0[id] = stream }
    }

    func unregister(_ id: ObjectIdentifier) {
        streams.withLockedValue { $0[id] = nil }
    }

    /// Server shutdown: closes every stream.
    func closeStreams() {
        for stream in streams.withLockedValue({ Array($0.values) }) { stream.channel.close(promise: nil) }
    }

    // MARK: Responses

    static func json(_ status: HTTPResponseStatus, _ value: JSONValue) -> HTTPResponse {
        secured(.json(status, value))
    }

    static func error(_ status: HTTPResponseStatus, _ message: String) -> HTTPResponse {
        json(status, .object(JSONObject([("error", .string(message))])))
    }

    /// The headers of every dashboard response: nothing from elsewhere, no framing, no sniffing.
    static let securityHeaders: [(String, String)] = [
        (
            "Content-Security-Policy",
            "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                + "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
        ("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer"),
    ]

    static func secured(_ response: HTTPResponse) -> HTTPResponse {
        var response = response
        response.extraHeaders += securityHeaders
        return response
    }
}

extension HTTPResponse {
    static func html(_ text: String) -> HTTPResponse {
        HTTPResponse(status: .ok, contentType: "text/html; charset=utf-8", body: ByteBuffer(string: text))
    }
}

extension Result where Success == HTTPResponse, Failure == HTTPResponse {
    /// The response either way.
    fileprivate var merged: HTTPResponse {
        switch self {
        case .success(let response), .failure(let response): return response
        }
    }
}
