import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Reverb
import Testing

extension Application {
    /// The app most tests use: Reverb's development credentials, options as given.
    static func test(
        key: String = "reverb-key",
        allowedOrigins: [String] = ["*"],
        pingInterval: Int = 60,
        activityTimeout: Int = 30,
        maxConnections: Int? = nil,
        maxMessageSize: Int = 10_000,
        clientEvents: ClientEventPolicy = .members,
        rateLimiting: RateLimiting = RateLimiting(),
        presenceLimits: PresenceLimits = PresenceLimits(),
        subscriptionCount: Bool = false
    ) -> Application {
        Application(
            id: "123456", key: key, secret: "reverb-secret", allowedOrigins: allowedOrigins,
            pingInterval: pingInterval, activityTimeout: activityTimeout, maxConnections: maxConnections,
            maxMessageSize: maxMessageSize, acceptClientEventsFrom: clientEvents, rateLimiting: rateLimiting,
            presenceLimits: presenceLimits, subscriptionCount: subscriptionCount)
    }
}

/// A running `ReverbServer` on 127.0.0.1 with a free port, and the clients a test opened on it.
struct TestServer: Sendable {
    let server: ReverbServer
    let port: Int
    let apps: [Application]
    /// The `path` option as URLs carry it: "" or "/ws".
    let prefix: String
    private let clients: ClientRegistry

    var app: Application { apps[0] }

    fileprivate init(server: ReverbServer, port: Int, apps: [Application], prefix: String) {
        self.server = server
        self.port = port
        self.apps = apps
        self.prefix = prefix
        self.clients = ClientRegistry()
    }

    static let pusherJSQuery = "?protocol=7&client=js&version=8.4.0&flash=false"

    /// Opens a WebSocket with the given request line path and headers; returns after the response head.
    func open(
        path: String, method: String = "GET", version: String = "HTTP/1.1", headers: [(String, String)]? = nil,
        extraBytes: [UInt8] = []
    ) async throws -> WebSocketTestClient {
        let request = WebSocketTestClient.handshakeRequest(
            path: path, method: method, version: version,
            headers: headers ?? WebSocketTestClient.standardHeaders(port: port))
        let client = try await WebSocketTestClient.open(port: port, request: request, extraBytes: extraBytes)
        clients.add(client.channel)
        return client
    }

    /// Opens `{prefix}/app/{key}{query}` and expects the 101 (the first frame is not read yet).
    func upgrade(
        key: String? = nil, query: String = pusherJSQuery, origin: String? = nil, extraBytes: [UInt8] = [],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> WebSocketTestClient {
        let client = try await open(
            path: "\(prefix)/app/\(key ?? app.key)\(query)",
            headers: WebSocketTestClient.standardHeaders(port: port, origin: origin), extraBytes: extraBytes)
        guard client.response.status == 101 else {
            Issue.record("handshake refused:\n\(client.response)", sourceLocation: sourceLocation)
            throw TestClientError.handshakeFailed(client.response)
        }
        return client
    }

    /// Connects like pusher-js and reads `connection_established`, checking its exact bytes.
    func connect(
        key: String? = nil, query: String = pusherJSQuery, origin: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> WebSocketTestClient {
        var client = try await upgrade(key: key, query: query, origin: origin, sourceLocation: sourceLocation)
        client.socketID = try await client.expectEstablished(
            activityTimeout: app.activityTimeout, sourceLocation: sourceLocation)
        return client
    }

    /// Sends a raw HTTP request and reads the whole response (the request should ask to close).
    func http(_ request: String) async throws -> RawHTTPResponse {
        try await RawHTTP.send(port: port, request: request)
    }

    fileprivate func closeClients() async {
        let channels = clients.all
        for channel in channels { try? await channel.close() }
    }
}

/// The client channels a test opened, closed when the test ends.
final class ClientRegistry: Sendable {
    private let channels = NIOLockedValueBox<[any Channel]>([])

    func add(_ channel: any Channel) {
        channels.withLockedValue { $0.append(channel) }
    }

    var all: [any Channel] { channels.withLockedValue { $0 } }
}

extension WebSocketTestClient {
    /// `^[1-9][0-9]{0,9}\.[1-9][0-9]{0,9}$` (§1.4).
    static func isWellFormedSocketID(_ socketID: String) -> Bool {
        let parts = socketID.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 2
            && parts.allSatisfy { part in
                (1...10).contains(part.count) && part.first != "0"
                    && part.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
            }
    }

    /// Reads `connection_established`, checks its exact bytes and the socket_id format (§1.4), and
    /// returns the socket_id.
    func expectEstablished(activityTimeout: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws
        -> String
    {
        let text = try await nextText()
        let prefix = #"{"event":"pusher:connection_established","data":"{\"socket_id\":\""#
        guard text.hasPrefix(prefix) else {
            Issue.record("not connection_established: \(text)", sourceLocation: sourceLocation)
            throw TestClientError.unexpected(
                "connection_established",
                .frame(.init(fin: true, rsv: 0, opcode: 1, masked: false, payload: Array(text.utf8))))
        }
        let socketID = String(text.dropFirst(prefix.count).prefix { $0 != "\\" })
        #expect(Self.isWellFormedSocketID(socketID), "socket_id \(socketID)", sourceLocation: sourceLocation)
        if let dot = socketID.firstIndex(of: ".") {
            let parts = [socketID[..<dot], socketID[socketID.index(after: dot)...]].compactMap { Int($0) }
            #expect(
                parts.count == 2 && parts.allSatisfy { (1...1_000_000_000).contains($0) },
                sourceLocation: sourceLocation)
        }
        #expect(
            text == PusherFrames.established(socketID: socketID, activityTimeout: activityTimeout),
            sourceLocation: sourceLocation)
        return socketID
    }
}

/// Starts a server with `apps` (and route prefix `path`), runs `body`, then closes every client and
/// shuts the server down, whether `body` threw or not.
func withTestServer<T>(
    apps: [Application] = [.test()], path: String = "", _ body: (TestServer) async throws -> T
) async throws -> T {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    var logger = Logger(label: "reverb-integration-test")
    logger.logLevel = .critical
    let configuration = ReverbConfiguration(
        server: ServerConfiguration(host: "127.0.0.1", port: 0, path: path), apps: apps)
    let server = try ReverbServer(configuration: configuration, eventLoopGroup: group, logger: logger)
    let result: Result<T, any Error>
    do {
        let address = try await server.start()
        let testServer = TestServer(
            server: server, port: address.port ?? 0, apps: apps, prefix: configuration.server.routePrefix)
        do {
            result = .success(try await body(testServer))
        } catch {
            result = .failure(error)
        }
        await testServer.closeClients()
    } catch {
        result = .failure(error)
    }
    await server.shutdown()
    try await group.shutdownGracefully()
    return try result.get()
}

extension WebSocketTestClient {
    /// The `auth` value for this socket (§4.3): `{key}:{hex HMAC-SHA256(secret, socket:channel[:data])}`.
    func auth(
        _ channel: String, channelData: String? = nil, key: String = "reverb-key", secret: String = "reverb-secret"
    ) -> String {
        ChannelAuthorization.auth(
            key: key, secret: secret, socketID: socketID, channel: channel, channelData: channelData)
    }

    /// Signs and subscribes to a private-type channel, expecting the plain succeeded frame.
    func subscribePrivate(_ channel: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await subscribe(channel, auth: auth(channel))
        try await expectSubscribed(channel, sourceLocation: sourceLocation)
    }

    /// Signs and subscribes to a presence channel; the caller reads the succeeded frame.
    func joinPresence(_ channel: String, channelData: String) async throws {
        try await subscribe(channel, auth: auth(channel, channelData: channelData), channelData: channelData)
    }
}
