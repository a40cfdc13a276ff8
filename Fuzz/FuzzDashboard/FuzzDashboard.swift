// Compiled only where `@testable` works: debug builds (corpus replay) and `make fuzz` (`-enable-testing
// -DFUZZING`). A release build (`make run`) gets a stub that says so.
#if DEBUG || FUZZING
    import FuzzSupport
    import Logging
    import NIOCore
    import NIOEmbedded
    import NIOHTTP1

    @testable import Reverb

    /// The dashboard's requests (`Sources/Reverb/Dashboard/`) through `Dashboard.respond` and
    /// `openStream`, on a node with two apps and a dashboard password; a fresh `Dashboard` (login limit
    /// included) per input, a fixed signing key and clock. The input is a script of up to 16 requests,
    /// each two control bytes and a line of text (up to `\n`):
    /// - byte 1: bits 0–2 the route (page, login, session, overview, channels, channel, events, stream),
    ///   bits 3–4 which of the route's methods, bits 5–7 the cookie: none; a session of app 1; of app 2;
    ///   of every app; an expired session of app 1; app 1's session with one byte changed (at the text's
    ///   first byte); the text as the whole `Cookie` header; the session the script's last login got.
    /// - byte 2: bit 0 the session's CSRF token (else the text as the token), bits 1–2 the app in the path or
    ///   `?app=` (1, 2, an unknown 9, the text), bit 3 the text as the login form, channel name or event body
    ///   (else a valid one), bits 4–5 which valid login form (app 1's secret, the password, a wrong
    ///   secret, an unknown app).
    ///
    /// Invariants: nothing traps; no 500; every response carries the security headers; without a valid
    /// session nothing but the login form answers (the page redirects with 303, the rest is 401), and a
    /// changed, expired or made-up cookie is no session; a signed token reads back to its session and
    /// with any byte changed to nothing; state-changing routes need the session's CSRF token (else 403);
    /// an app session sees only its app (any other id, known or not, is 403, so it learns nothing); the
    /// password's session sees every app (an unknown id is 404); right credentials log in (303 with a
    /// cookie of the right scope) until failures trip the limit, wrong ones give 401, and the sixth
    /// failure in a minute is 429; `/api/session` hands out the session's CSRF token.
    func fuzz(_ bytes: UnsafeRawBufferPointer) {
        var input = FuzzInput(bytes)
        let dashboard = Dashboard(
            configuration: node.configuration, apps: node.apps, httpAPI: node.httpAPI, fanout: node.fanout,
            cluster: nil, signer: signer, clock: { now })
        var script = Script(dashboard: dashboard)
        var requests = 0
        while !input.isAtEnd, requests < 16 {
            let first = input.byte()
            let second = input.byte()
            var text: [UInt8] = []
            while !input.isAtEnd {
                let byte = input.byte()
                if byte == UInt8(ascii: "\n") { break }
                text.append(byte)
            }
            script.run(first: first, second: second, text: text)
            requests += 1
        }
        loop.run()
    }

    let now: Int64 = 1_700_000_000
    let loop = EmbeddedEventLoop()
    let signer = DashboardSessionSigner(key: "fuzz-dashboard-key")
    let password = "dashboard-password"
    let node: Node = {
        var configuration = ReverbConfiguration(apps: [
            Application(id: "1", key: "key1", secret: "secret1"), Application(id: "2", key: "key2", secret: "secret2"),
        ])
        configuration.dashboard = DashboardConfiguration(enabled: true, password: password)
        var logger = Logger(label: "fuzz")
        logger.logLevel = .critical
        do {
            return try Node(configuration: configuration, eventLoopGroup: loop, logger: logger, clock: { now })
        } catch {
            fatalError("harness: node refused: \(error)")
        }
    }()

    typealias Session = DashboardSessionSigner.Session

    /// Where a future's result lands; the embedded loop runs on the harness's thread only.
    final class Answer: @unchecked Sendable {
        var response: HTTPResponse?
    }

    struct Script {
        let dashboard: Dashboard
        /// The session of the last successful login, and its token.
        var loggedIn: (token: String, session: Session)?
        var failedLogins = 0

        init(dashboard: Dashboard) {
            self.dashboard = dashboard
        }

        mutating func run(first: UInt8, second: UInt8, text bytes: [UInt8]) {
            let text = String(decoding: bytes, as: UTF8.self)
            let useText = second & 0x08 != 0
            let appID = ["1", "2", "9", percentEncode(text)][Int(second >> 1) & 3]
            let plainAppID = ["1", "2", "9", text][Int(second >> 1) & 3]
            let channelName = useText ? percentEncode(text) : "presence-room"
            let routes: [(path: String, route: DashboardRoute)] = [
                ("", .page), ("/login", .login), ("/api/session", .session),
                ("/api/overview?app=" + percentEncode(plainAppID), .overview),
                ("/api/apps/\(appID)/channels?prefix=" + percentEncode(text), .channels(appID: plainAppID)),
                (
                    "/api/apps/\(appID)/channels/\(channelName)",
                    .channel(appID: plainAppID, channel: useText ? text : "presence-room")
                ),
                ("/api/apps/\(appID)/events", .events(appID: plainAppID)),
                ("/api/stream?app=" + percentEncode(plainAppID), .stream),
            ]
            let (path, route) = routes[Int(first & 7)]
            let methods = route.allowedMethods
            let method = methods[Int(first >> 3 & 3) % methods.count]

            // The cookie, and the session it should stand for.
            var cookieHeader: String?
            var expected: Session?
            switch first >> 5 {
            case 0: break
            case 1, 2, 3:
                let scope: Session.Scope = first >> 5 == 3 ? .all : .app(first >> 5 == 1 ? "1" : "2")
                let issued = signer.issue(scope: scope, now: now)
                cookieHeader = "theme=dark; \(DashboardSessionSigner.cookieName)=\(issued.token)"
                expected = issued.session
                require(signer.verify(issued.token, now: now) == issued.session, "an issued token does not read back")
            case 4:
                let issued = signer.issue(scope: .app("1"), now: now - DashboardSessionSigner.lifetime)
                cookieHeader = "\(DashboardSessionSigner.cookieName)=\(issued.token)"
            case 5:
                let issued = signer.issue(scope: .app("1"), now: now)
                var token = Array(issued.token.utf8)
                let index = Int(bytes.first ?? 0) % token.count
                let replacement = bytes.count > 1 ? bytes[1] : UInt8(ascii: "x")
                if token[index] == replacement {
                    token[index] = replacement == UInt8(ascii: "0") ? 1 : UInt8(ascii: "0")
                } else {
                    token[index] = replacement
                }
                let changed = String(decoding: token, as: UTF8.self)
                require(signer.verify(changed, now: now) == nil, "a token with byte \(index) changed was accepted")
                cookieHeader = "\(DashboardSessionSigner.cookieName)=\(changed)"
            case 6:
                cookieHeader = text
            default:
                if let loggedIn {
                    cookieHeader = "\(DashboardSessionSigner.cookieName)=\(loggedIn.token)"
                    expected = loggedIn.session
                }
            }
            if case 6 = first >> 5 {
                // Made-up text cannot carry a MAC under the harness's key.
                let token = DashboardSessionSigner.cookie(in: [text])
                require(token.flatMap { signer.verify($0, now: now) } == nil, "a made-up cookie was a session: \(text)")
            }

            var headers = HTTPHeaders()
            if let cookieHeader { headers.add(name: "Cookie", value: cookieHeader) }
            let rightCSRF = second & 1 != 0
            if let expected, rightCSRF {
                headers.add(name: "X-CSRF-Token", value: signer.csrfToken(for: expected))
            } else if !rightCSRF, !bytes.isEmpty {
                headers.add(name: "X-CSRF-Token", value: text)
                if let expected { require(!signer.checkCSRF(text, session: expected), "made-up CSRF token accepted") }
            }
            var body = ByteBuffer()
            let forms = [
                "app_id=1&secret=secret1", "password=\(password)", "app_id=1&secret=secret2", "app_id=9&secret=x",
            ]
            let form = Int(second >> 4 & 3)
            if route == .login {
                body = ByteBuffer(string: useText ? text : forms[form])
            } else if case .events = route {
                body = ByteBuffer(string: useText ? text : #"{"name":"fuzz","channel":"test","data":"{}"}"#)
            }
            let head = HTTPRequestHead(
                version: .http1_1, method: HTTPMethod(rawValue: method), uri: dashboard.basePath + path,
                headers: headers)
            let request = HTTPAPIRequest(head: head, body: body)
            require(dashboard.session(of: request) == expected, "\(method) \(path): the cookie read as another session")

            let response: HTTPResponse
            if route == .stream {
                switch dashboard.openStream(request) {
                case .success(let grant):
                    require(expected != nil, "a stream without a session")
                    require(grant.session == expected, "a stream of another session")
                    checkVisible(plainAppID, scope: expected!.scope, status: .ok, path: path, allowEmpty: true)
                    return
                case .failure(let refusal):
                    response = refusal
                }
            } else {
                let answer = Answer()
                dashboard.respond(to: request, route: route, client: "192.0.2.1", eventLoop: loop).whenComplete {
                    answer.response = try? $0.get()
                }
                loop.run()
                guard let answered = answer.response else { return require(false, "\(method) \(path): no answer") }
                response = answered
            }
            let status = response.status
            trace("\(method) \(path) cookie \(first >> 5): \(status.code) \(String(buffer: response.body).prefix(200))")
            require(status != .internalServerError, "500 for \(method) \(path)")
            for (name, _) in Dashboard.securityHeaders {
                require(
                    response.extraHeaders.contains { $0.0 == name }, "\(method) \(path) \(status.code) without \(name)")
            }

            if route == .login {
                checkLogin(method: method, response: response, body: String(buffer: body))
                return
            }
            guard let session = expected else {
                let refused: HTTPResponseStatus = route == .page ? .seeOther : .unauthorized
                return require(status == refused, "\(method) \(path) without a session: \(status.code)")
            }
            if route.changesState && !rightCSRF {
                return require(status == .forbidden, "\(method) \(path) without the CSRF token: \(status.code)")
            }
            switch route {
            case .page:
                require(status == .ok, "the page with a session: \(status.code)")
            case .session:
                require(status == .ok, "/api/session: \(status.code)")
                let reply = try? JSONParser.parse(response.body.readableBytesView)
                guard case .object(let object)? = reply, case .string(let token)? = object["csrf_token"] else {
                    return require(false, "/api/session without a CSRF token")
                }
                require(token == signer.csrfToken(for: session), "/api/session handed out another CSRF token")
            case .overview, .stream:
                checkVisible(plainAppID, scope: session.scope, status: status, path: path, allowEmpty: true)
            case .channels, .channel, .events:
                checkVisible(plainAppID, scope: session.scope, status: status, path: path, allowEmpty: false)
            case .login, .logout, .asset:
                break
            }
        }

        /// An app session sees its app only; the password's session every configured app.
        func checkVisible(
            _ id: String, scope: Session.Scope, status: HTTPResponseStatus, path: String, allowEmpty: Bool
        ) {
            let known = id == "1" || id == "2"
            let visible: Bool
            switch scope {
            case .all: visible = known || (allowEmpty && id.isEmpty)
            case .app(let own): visible = id == own || (allowEmpty && id.isEmpty)
            }
            if visible {
                require(status.code < 500 && status != .forbidden && status != .unauthorized, "\(path): \(status.code)")
            } else if case .app = scope {
                require(status == .forbidden, "\(path) for an app session: \(status.code), not 403")
            } else {
                require(status == .notFound, "\(path) for the password's session: \(status.code), not 404")
            }
        }

        mutating func checkLogin(method: String, response: HTTPResponse, body: String) {
            guard method == "POST" else {
                return require([.ok, .seeOther].contains(response.status), "the login form: \(response.status.code)")
            }
            let form = HTTPAPIRequest.parseQuery(body)
            func field(_ name: String) -> String { form.last { $0.name == name }?.value ?? "" }
            let scope: Session.Scope?
            if !field("password").isEmpty {
                scope = field("password") == password ? .all : nil
            } else if (field("app_id") == "1" && field("secret") == "secret1")
                || (field("app_id") == "2" && field("secret") == "secret2")
            {
                scope = .app(field("app_id"))
            } else {
                scope = nil
            }
            if failedLogins >= 5 {
                return require(
                    response.status == .tooManyRequests, "login after \(failedLogins) failures: \(response.status.code)"
                )
            }
            guard let scope else {
                failedLogins += 1
                return require(response.status == .unauthorized, "a wrong login: \(response.status.code)")
            }
            require(response.status == .seeOther, "a right login: \(response.status.code)")
            failedLogins = 0
            let cookie = response.extraHeaders.first { $0.0 == "Set-Cookie" }?.1 ?? ""
            guard let token = DashboardSessionSigner.cookie(in: [cookie]),
                let session = signer.verify(token.prefix { $0 != ";" }.description, now: now)
            else { return require(false, "a right login set no session cookie: \(cookie)") }
            require(session.scope == scope, "a login as \(scope) got a session of \(session.scope)")
            loggedIn = (String(token.prefix { $0 != ";" }), session)
        }
    }

    #if FUZZING
        @_cdecl("LLVMFuzzerTestOneInput")
        public func fuzzEntry(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
            fuzz(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        }

        @_cdecl("FuzzDashboard_main")
        public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
            runFuzzer(argc, argv, fuzzEntry)
        }
    #else
        @main struct Replay {
            static func main() { CorpusReplay.run(target: "FuzzDashboard", fuzz) }
        }
    #endif
#else
    import FuzzSupport

    @main struct Unavailable {
        static func main() { CorpusReplay.unavailable(target: "FuzzDashboard") }
    }
#endif
