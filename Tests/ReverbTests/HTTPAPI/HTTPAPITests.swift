import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import Reverb

/// Drives `HTTPAPI` directly with built requests and a fixed clock (`http-api.md` §2–§6).
@Suite("HTTP API")
struct HTTPAPITests {
    static let app = Application(id: "3", key: "278d425bdf160c739803", secret: "7ad3773142a6692b25b8")
    static let timestamp: Int64 = 1_353_088_179

    let loop = EmbeddedEventLoop()
    let api: HTTPAPI

    init() {
        let configuration = ReverbConfiguration(apps: [Self.app])
        api = HTTPAPI.test(configuration: configuration, loop: loop, clock: { Self.timestamp })
    }

    func request(_ method: String, _ uri: String, body: String = "") -> HTTPAPIRequest {
        HTTPAPIRequest(
            head: HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: uri),
            body: ByteBuffer(string: body))
    }

    /// Signs `path` with `RequestSigner`, as every client here does, and returns the full URI.
    func signed(_ method: String, _ path: String, query: [(String, String)] = [], body: String = "") -> String {
        let signer = RequestSigner(key: Self.app.key, secret: Self.app.secret)
        return path + "?"
            + signer.signedQuery(method: method, path: path, parameters: query, body: body, timestamp: Self.timestamp)
    }

    func respond(_ request: HTTPAPIRequest) -> (status: HTTPResponseStatus, body: String) {
        let path = request.rawPath[...]
        guard let route = Route.match(path: path, prefixSegments: []) else { return (.notFound, "no route") }
        let response = api.respond(to: request, route: route)
        return (response.status, String(buffer: response.body))
    }

    @Test("Pusher's documented signature vector")
    func pusherVector() {
        let body = #"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#
        let uri =
            "/apps/3/events?auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        let result = respond(request("POST", uri, body: body))
        #expect(result.status == .ok)
        #expect(result.body == "{}")
    }

    @Test("spec vectors for GET, empty-body md5 and terminate")
    func specVectors() {
        let base = "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0"
        #expect(
            respond(
                request(
                    "GET",
                    "/apps/3/channels?filter_by_prefix=presence-&info=user_count&\(base)&auth_signature=16819168891cb5dfd72b5c7a5d3d602605b26c6ba1930033b5e2eeeb65010291"
                )
            ).status == .ok)
        #expect(
            respond(
                request(
                    "GET",
                    "/apps/3/channels?filter_by_prefix=presence-&info=user_count&\(base)&body_md5=d41d8cd98f00b204e9800998ecf8427e&auth_signature=f3f17c61ae491cc9085db68b22076e9b772e3bcb301659d655153ee3f9782aba"
                )
            ).status == .ok)
        #expect(
            respond(
                request(
                    "POST",
                    "/apps/3/users/42/terminate_connections?\(base)&body_md5=99914b932bd37a50b983c5e7c90ae93b&auth_signature=2829710742ff5f799010258297d09016e2366257e3e954039eeda349073a2bcf",
                    body: "{}")) == (.ok, "{}"))
        #expect(
            respond(
                request(
                    "POST",
                    "/users/42/terminate_connections?\(base)&body_md5=99914b932bd37a50b983c5e7c90ae93b&auth_signature=103f2a90361bc4bcd8407c86f261563b23281fea1602c29fc81ac0ec1b7ec5a7",
                    body: "{}")) == (.ok, "{}"))
    }

    @Test("prefixed path: both the full-path and the stripped-path signature pass")
    func prefixVectors() {
        let configuration = ReverbConfiguration(server: ServerConfiguration(path: "ws"), apps: [Self.app])
        let api = HTTPAPI.test(configuration: configuration, loop: loop, clock: { Self.timestamp })
        let body = #"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#
        let query =
            "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f"
        for signature in [
            "45cea44fbca3f0fcc9cd021bb15ad7cb1b038c29729fc406ca10d233ec6ed870",
            "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c",
        ] {
            let request = request("POST", "/ws/apps/3/events?\(query)&auth_signature=\(signature)", body: body)
            let response = api.respond(to: request, route: .events(appID: "3"))
            #expect(response.status == .ok)
        }
    }

    @Test("signing failures are 401 with the spec's texts")
    func signingFailures() {
        #expect(respond(request("GET", "/apps/3/channels")) == (.unauthorized, "Authentication parameters missing."))
        let wrong = signed("GET", "/apps/3/channels").replacingOccurrences(
            of: "auth_signature=", with: "auth_signature=0")
        #expect(respond(request("GET", wrong)) == (.unauthorized, "Authentication signature invalid."))
        let old =
            "/apps/3/channels?auth_key=278d425bdf160c739803&auth_timestamp=1353080000&auth_version=1.0&auth_signature=00"
        #expect(
            respond(request("GET", old)) == (
                .unauthorized, "Timestamp expired: 1353080000 is not within 600 s of server time 1353088179."
            ))
        let badMD5 = signed("GET", "/apps/3/channels", query: [("body_md5", "abc")])
        #expect(respond(request("GET", badMD5)).status == .unauthorized)
        let body = #"{"name":"a","channel":"b","data":"c"}"#
        let tampered = signed("POST", "/apps/3/events", body: body)
        #expect(
            respond(request("POST", tampered, body: body.replacingOccurrences(of: "\"a\"", with: "\"z\""))) == (
                .unauthorized, "Authentication signature invalid."
            ))
        #expect(respond(request("GET", "/apps/9/channels")) == (.notFound, "No matching application for ID [9]."))
    }

    @Test("while the fan-out backlog is over its high-water mark, an event's answer waits for it to drain")
    func publishWaitsOutTheBacklog() throws {
        let body = #"{"name":"e","channel":"c","data":"x"}"#
        let publish = request("POST", signed("POST", "/apps/3/events", body: body), body: body)
        let backlog = try #require(api.apps.app(id: "3")).fanout.backlog
        backlog.add(backlog.highWaterMark + 1)
        let waiting = api.respond(to: publish, route: .events(appID: "3"), eventLoop: loop)
        let query = request("GET", signed("GET", "/apps/3/connections"))
        let answered = api.respond(to: query, route: .connections(appID: "3"), eventLoop: loop)
        loop.run()
        #expect(throws: Never.self) { try answered.wait() }
        let done = NIOLockedValueBox(false)
        waiting.whenSuccess { _ in done.withLockedValue { $0 = true } }
        loop.run()
        #expect(!done.withLockedValue { $0 })
        backlog.remove(backlog.highWaterMark + 1)
        loop.run()
        #expect(done.withLockedValue { $0 })
        #expect(try waiting.wait().status == .ok)
    }

    @Test("body and field validation")
    func validation() {
        func post(_ body: String) -> (HTTPResponseStatus, String) {
            respond(request("POST", signed("POST", "/apps/3/events", body: body), body: body))
        }
        #expect(post("[1]") == (.badRequest, "Invalid JSON body."))
        #expect(post("{oops") == (.badRequest, "Invalid JSON body."))
        #expect(
            post(#"{"name":"x","channel":"c"}"#) == (.unprocessableEntity, #"{"data":["The data field is required."]}"#)
        )
        #expect(
            post(#"{"data":{},"channel":"c"}"#) == (
                .unprocessableEntity,
                #"{"name":["The name field is required."],"data":["The data field must be a string."]}"#
            ))
        #expect(
            post(#"{"name":"x","data":"d"}"#) == (
                .unprocessableEntity,
                #"{"channels":["The channels field is required when channel is not present."],"channel":["The channel field is required when channels is not present."]}"#
            ))
        #expect(
            post(#"{"name":"x","data":"d","channels":[1]}"#) == (
                .unprocessableEntity, #"{"channels.0":["The channels.0 field must be a string."]}"#
            ))
        #expect(
            post(#"{"name":"x","data":"d","channel":"c","socket_id":5}"#) == (
                .unprocessableEntity, #"{"socket_id":["The socket id field must be a string."]}"#
            ))
        let many = (0...100).map { "\"c\($0)\"" }.joined(separator: ",")
        #expect(
            post(#"{"name":"x","data":"d","channels":[\#(many)]}"#) == (
                .badRequest, "Too many channels: at most 100 per event."
            ))
        #expect(post(#"{"name":"x","data":"d","channel":"a b"}"#) == (.badRequest, "Invalid channel name: a b."))
        let longName = String(repeating: "n", count: 201)
        #expect(
            post(#"{"name":"\#(longName)","data":"d","channel":"c"}"#) == (
                .badRequest, "Event name too long: at most 200 bytes."
            ))
        #expect(post(##"{"name":"x","data":"d","channel":"#server-to-user-42"}"##) == (.ok, "{}"))
    }

    @Test("batch validation and replies")
    func batch() {
        func post(_ body: String) -> (HTTPResponseStatus, String) {
            respond(request("POST", signed("POST", "/apps/3/batch_events", body: body), body: body))
        }
        #expect(post("{}") == (.unprocessableEntity, #"{"batch":["The batch field is required."]}"#))
        #expect(post(#"{"batch":5}"#) == (.unprocessableEntity, #"{"batch":["The batch field must be an array."]}"#))
        #expect(
            post(#"{"batch":[{"name":"a","data":"b","channel":"c"},{"data":"b"}]}"#) == (
                .unprocessableEntity,
                #"{"batch.1.name":["The batch.1.name field is required."],"batch.1.channel":["The batch.1.channel field is required."]}"#
            ))
        #expect(post(#"{"batch":[{"name":"a","data":"b","channel":"c"}]}"#) == (.ok, #"{"batch":{}}"#))
        #expect(
            post(
                #"{"batch":[{"name":"a","data":"b","channel":"c","info":"subscription_count"},{"name":"a","data":"b","channel":"c"}]}"#
            ) == (.ok, #"{"batch":[{},{}]}"#))
        let items = (0...100).map { _ in #"{"name":"a","data":"b","channel":"c"}"# }.joined(separator: ",")
        #expect(post(#"{"batch":[\#(items)]}"#) == (.badRequest, "Too many events: at most 100 per batch."))
    }

    @Test("queries on an empty node")
    func emptyQueries() {
        #expect(respond(request("GET", signed("GET", "/apps/3/channels"))) == (.ok, #"{"channels":{}}"#))
        #expect(
            respond(request("GET", signed("GET", "/apps/3/channels/x", query: [("info", "subscription_count")]))) == (
                .ok, #"{"occupied":false}"#
            ))
        #expect(respond(request("GET", signed("GET", "/apps/3/channels/presence-x/users"))) == (.notFound, "{}"))
        #expect(respond(request("GET", signed("GET", "/apps/3/connections"))) == (.ok, #"{"connections":0}"#))
    }

    @Test("cache info carries the frame and its ttl")
    func cacheInfo() {
        let body = #"{"name":"App\\Events\\TestEvent","channel":"cache-test-channel","data":"{\"foo\":\"bar\"}"}"#
        #expect(respond(request("POST", signed("POST", "/apps/3/events", body: body), body: body)).0 == .ok)
        #expect(
            respond(request("GET", signed("GET", "/apps/3/channels/cache-test-channel", query: [("info", "cache")])))
                == (
                    .ok,
                    #"{"occupied":false,"cache":{"event":"App\\Events\\TestEvent","data":"{\"foo\":\"bar\"}","channel":"cache-test-channel","ttl":1800}}"#
                ))
    }

    @Test(
        "routes",
        arguments: [
            ("/app/abc", Route.webSocket(key: "abc")), ("/up", .up), ("/apps/1/events", .events(appID: "1")),
            ("/apps/1/channels/a%2Eb", .channel(appID: "1", channel: "a.b")),
            ("/apps/1/channels/x/users", .channelUsers(appID: "1", channel: "x")),
            ("/users/7/terminate_connections", .terminateUserConnectionsByKey(userID: "7")),
        ])
    func routes(_ path: String, _ route: Route) {
        #expect(Route.match(path: path[...], prefixSegments: []) == route)
    }

    @Test(
        "unknown paths",
        arguments: ["/", "/app/", "/app/a/", "/apps//events", "/up/", "/apps/1/channels/a%2Fb/users/x", "/nope"])
    func noRoute(_ path: String) {
        #expect(Route.match(path: path[...], prefixSegments: []) == nil)
    }

    @Test("prefix is required")
    func prefix() {
        #expect(Route.match(path: "/ws/up", prefixSegments: ["ws"]) == .up)
        #expect(Route.match(path: "/up", prefixSegments: ["ws"]) == nil)
    }
}

extension HTTPAPI {
    /// A single-node HTTP API over `configuration`'s apps, on `loop`.
    static func test(
        configuration: ReverbConfiguration, loop: any EventLoop, clock: @escaping @Sendable () -> Int64
    ) -> HTTPAPI {
        let fanout = Fanout(eventLoops: [loop], logger: Logger(label: "test"))
        return HTTPAPI(
            apps: AppRegistry(configuration.apps, fanout: fanout), pubSub: InMemoryPubSub(),
            configuration: configuration, logger: Logger(label: "test"), clock: clock)
    }
}
