// Compiled only where `@testable` works: debug builds (corpus replay) and `make fuzz` (`-enable-testing
// -DFUZZING`). A release build (`make run`) gets a stub that says so.
#if DEBUG || FUZZING
    import FuzzSupport
    import Logging
    import NIOCore
    import NIOEmbedded
    import NIOHTTP1

    @testable import Reverb

    /// The HTTP side of the listener (`http-api.md`). The first byte picks one of two modes:
    ///
    /// - even: the parts, from `URI\nBODY`. Route matching (a matched route, written back as a path, matches
    ///   to the same route; the connection's and the API's path split agree), the query parser (items
    ///   written back percent-encoded parse to the same items), signatures (the fuzzed request, with
    ///   whatever signature it carries, is never accepted; the same request signed by `RequestSigner`
    ///   always is, and with one signature byte changed never is), and the signed request answered by
    ///   the HTTP API (no 500; JSON answers are JSON).
    /// - odd: the bytes, cut into chunks, through the listener's whole pipeline on an `EmbeddedChannel`
    ///   (request decoder, pipelining, `HTTPServerHandler`, the API). Whatever comes back is a sequence of
    ///   well-formed HTTP/1.x responses whose bodies match their `Content-Length`, none a 500, nothing
    ///   after a `Connection: close` response.
    func fuzz(_ bytes: UnsafeRawBufferPointer) {
        var input = FuzzInput(bytes)
        let mode = input.byte()
        if mode & 1 == 0 {
            checkParts(mode: mode, input.rest())
        } else {
            checkPipeline(mode: mode, &input)
        }
    }

    let now: Int64 = 1_700_000_000
    let prefixes: [[String]] = [[], ["ws"], ["ws", "v1"]]

    /// One node, shared by every input of the parts mode: its HTTP API answers without I/O; what the
    /// answers leave for the loop (terminations) runs after each.
    let partsLoop = EmbeddedEventLoop()
    let partsNode: Node = makeNode(prefix: "", loop: partsLoop)

    func makeNode(prefix: String, loop: (any EventLoopGroup)? = nil) -> Node {
        var configuration = ReverbConfiguration(apps: [Application(id: "1", key: "key", secret: "secret")])
        configuration.server.path = prefix
        var logger = Logger(label: "fuzz")
        logger.logLevel = .critical
        do {
            return try Node(
                configuration: configuration, eventLoopGroup: loop ?? EmbeddedEventLoop(), logger: logger,
                clock: { now })
        } catch {
            fatalError("harness: node refused: \(error)")
        }
    }

    // MARK: Parts

    func checkParts(mode: UInt8, _ bytes: [UInt8]) {
        let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
        let uri = String(decoding: bytes[..<newline], as: UTF8.self)
        let body = newline < bytes.endIndex ? Array(bytes[(newline + 1)...]) : []
        let methods: [HTTPMethod] = [.GET, .POST, .HEAD, .PUT]
        let method = methods[Int(mode >> 1) % methods.count]
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: uri)
        let request = HTTPAPIRequest(head: head, body: ByteBuffer(bytes: body))

        // The path the connection routes on and the one the API signs must be the same.
        // Worked out here independently, byte-wise, as RFC 9112 defines the target (the first `?` octet).
        let question = uri.utf8.firstIndex(of: UInt8(ascii: "?")) ?? uri.utf8.endIndex
        let connectionPath = Substring(uri.utf8[..<question])
        require(
            HTTPAPIRequest.split(uri).path == connectionPath,
            "the connection's split gives \(HTTPAPIRequest.split(uri).path.debugDescription), not \(connectionPath.debugDescription)"
        )
        require(
            String(connectionPath) == request.rawPath,
            "the connection routes \(connectionPath.debugDescription) but the API sees \(request.rawPath.debugDescription)"
        )
        let rebuilt = request.rawPath + (uri.utf8.contains(UInt8(ascii: "?")) ? "?" + request.rawQuery : "")
        require(rebuilt == uri, "path and query \(rebuilt.debugDescription) do not give back \(uri.debugDescription)")

        let prefix = prefixes[Int(mode >> 3) % prefixes.count]
        if let route = Route.match(path: Substring(request.rawPath), prefixSegments: prefix) {
            let path = "/" + (prefix + segments(of: route)).map(percentEncode).joined(separator: "/")
            require(
                Route.match(path: Substring(path), prefixSegments: prefix) == route,
                "route \(route) written as \(path) does not match back")
        }

        let encoded = request.queryItems.map { "\(percentEncode($0.name))=\(percentEncode($0.value))" }
        let reparsed = HTTPAPIRequest.parseQuery(encoded.joined(separator: "&"))
        require(
            reparsed.map(\.name) == request.queryItems.map(\.name)
                && reparsed.map(\.value) == request.queryItems.map(\.value),
            "query items do not survive being written back: \(request.queryItems) vs \(reparsed)")

        checkSignatures(request, method: method)
    }

    func checkSignatures(_ request: HTTPAPIRequest, method: HTTPMethod) {
        let application = partsNode.apps.all[0].application
        // The fuzzer cannot compute HMAC-SHA256: whatever signature the input carries is wrong.
        if case .success = RequestSignature.verify(request, application: application, prefix: "", now: now) {
            require(false, "an unsigned request was accepted: \(request.rawPath)?\(request.rawQuery)")
        }

        // The same request as an SDK signs it: each parameter once, `auth_*` and `body_md5` left to the signer.
        var seen: Set<String> = []
        var parameters: [(String, String)] = []
        for (name, value) in request.queryItems {
            var key = name.lowercased()
            if key.hasSuffix("[]") { key.removeLast(2) }
            guard !key.hasPrefix("auth_"), key != "body_md5", seen.insert(key).inserted, !name.hasSuffix("[]") else {
                continue
            }
            parameters.append((name, value))
        }
        let signer = RequestSigner(key: "key", secret: "secret")
        let query = signer.signedQuery(
            method: method.rawValue, path: request.rawPath, parameters: parameters, body: request.body, timestamp: now)
        let signedHead = HTTPRequestHead(version: .http1_1, method: method, uri: request.rawPath + "?" + query)
        let signed = HTTPAPIRequest(head: signedHead, body: request.body)
        guard request.rawPath.hasPrefix("/") else { return }
        if case .failure(let failure) = RequestSignature.verify(signed, application: application, prefix: "", now: now)
        {
            require(
                false, "a request signed by RequestSigner was refused (\(failure)): \(signedHead.uri.debugDescription)")
        }

        // One signature byte changed.
        var tampered = Array(query.utf8)
        let last = tampered.count - 1
        tampered[last] = tampered[last] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
        let tamperedHead = HTTPRequestHead(
            version: .http1_1, method: method, uri: request.rawPath + "?" + String(decoding: tampered, as: UTF8.self))
        if case .success = RequestSignature.verify(
            HTTPAPIRequest(head: tamperedHead, body: request.body), application: application, prefix: "", now: now)
        {
            require(false, "a request with a changed signature was accepted: \(tamperedHead.uri)")
        }

        // The API's answer to the signed request.
        guard let route = Route.match(path: Substring(request.rawPath), prefixSegments: []),
            route.allowedMethods.contains(method.rawValue), route != .webSocket(key: "key")
        else { return }
        if case .webSocket = route { return }
        let response = partsNode.httpAPI.respond(to: signed, route: route)
        trace("\(method) \(route): \(response.status.code) \(String(buffer: response.body))")
        checkResponse(response, route: route)
        partsLoop.run()
    }

    func checkResponse(_ response: HTTPResponse, route: Route) {
        require(response.status != .internalServerError, "500 for \(route)")
        if response.contentType == "application/json" {
            require(
                (try? JSONParser.parse(response.body.readableBytesView)) != nil,
                "a JSON answer that is not JSON: \(String(buffer: response.body).debugDescription)")
        }
    }

    /// The decoded path segments of `route` after the prefix.
    func segments(of route: Route) -> [String] {
        switch route {
        case .webSocket(let key): ["app", key]
        case .up: ["up"]
        case .metrics: ["metrics"]
        case .events(let app): ["apps", app, "events"]
        case .batchEvents(let app): ["apps", app, "batch_events"]
        case .channels(let app): ["apps", app, "channels"]
        case .channel(let app, let channel): ["apps", app, "channels", channel]
        case .channelUsers(let app, let channel): ["apps", app, "channels", channel, "users"]
        case .connections(let app): ["apps", app, "connections"]
        case .terminateUserConnections(let app, let user): ["apps", app, "users", user, "terminate_connections"]
        case .terminateUserConnectionsByKey(let user): ["users", user, "terminate_connections"]
        case .dashboard: ["dashboard"]
        }
    }

    // MARK: Pipeline

    func checkPipeline(mode: UInt8, _ input: inout FuzzInput) {
        let loop = EmbeddedEventLoop()
        let node = makeNode(prefix: mode & 0x02 != 0 ? "ws" : "", loop: loop)
        let channel = EmbeddedChannel(loop: loop)
        defer {
            _ = try? channel.finish(acceptAlreadyClosed: true)
            try? loop.syncShutdownGracefully()
        }
        do {
            try ReverbServer.configurePipeline(channel.pipeline.syncOperations, node: node)
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        } catch {
            fatalError("harness: pipeline setup failed: \(error)")
        }
        // Chunk sizes first (0 ends the list), then the bytes.
        let sizes = input.chunkSizes()
        let stream = input.rest()
        var responses = ResponseStream()
        var offset = 0
        var index = 0
        while offset < stream.count, channel.isActive {
            let size = sizes.isEmpty ? stream.count : sizes[index % sizes.count]
            let end = min(stream.count, offset + size)
            do {
                try channel.writeInbound(ByteBuffer(bytes: stream[offset..<end]))
            } catch {
                require(!channel.isActive, "an inbound error escaped on an open channel: \(error)")
            }
            loop.run()
            responses.append(collect(channel))
            offset = end
            index += 1
        }
        loop.advanceTime(by: .seconds(16))
        responses.append(collect(channel))
        require(!channel.isActive || responses.upgraded, "a connection open after 16 s idle")
        responses.finish()
    }

    func collect(_ channel: EmbeddedChannel) -> [UInt8] {
        var bytes: [UInt8] = []
        while true {
            let part: IOData?
            do {
                part = try channel.readOutbound(as: IOData.self)
            } catch {
                require(false, "the server wrote something other than bytes: \(error)")
                return bytes
            }
            guard let part else { return bytes }
            guard case .byteBuffer(let buffer) = part else {
                require(false, "the server wrote a file region")
                return bytes
            }
            bytes += buffer.readableBytesView
        }
    }

    /// Responses as the client reads them: head, then exactly `Content-Length` body bytes.
    struct ResponseStream {
        private var pending: [UInt8] = []
        private(set) var upgraded = false
        private var closed = false

        mutating func append(_ bytes: [UInt8]) {
            guard !upgraded, !bytes.isEmpty else { return }
            require(!closed, "bytes written after a Connection: close response")
            pending += bytes
            while let length = nextResponse() { pending.removeFirst(length) }
        }

        /// The length of the first complete response in `pending`, checked.
        private mutating func nextResponse() -> Int? {
            guard !upgraded, !pending.isEmpty else { return nil }
            require(!closed, "a response after a Connection: close response")
            let terminator: [UInt8] = [13, 10, 13, 10]
            guard
                let headEnd = pending.indices.first(where: {
                    Array(pending[$0..<min(pending.count, $0 + 4)]) == terminator
                }
                )
            else {
                require(pending.count < 64 * 1024, "an unterminated response head")
                return nil
            }
            let head = String(decoding: pending[..<headEnd], as: UTF8.self)
            let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
            let status = lines[0].split(separator: " ", maxSplits: 2)
            require(
                status.count >= 2 && (status[0] == "HTTP/1.1" || status[0] == "HTTP/1.0") && status[1].count == 3,
                "a malformed status line \(lines[0].debugDescription)")
            let code = Int(status[1]) ?? 0
            require(code != 500, "a 500 response")
            var contentLength: Int?
            var close = false
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else {
                    require(false, "a header line without a colon: \(line.debugDescription)")
                    continue
                }
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].drop { $0 == " " }
                if name == "content-length" { contentLength = Int(value) }
                if name == "connection" && value.lowercased() == "close" { close = true }
            }
            let headLength = headEnd + 4
            trace("response: \(lines[0])")
            if code == 101 {
                upgraded = true
                return headLength
            }
            if code == 100 { return headLength }
            guard let contentLength else {
                require(false, "a \(code) response without Content-Length")
                return headLength
            }
            if close { closed = true }
            // A HEAD answer announces a length it does not send. Each response is written whole, and no
            // body of ours starts with "HTTP/1.", so a head followed by nothing or by the next head is one.
            let rest = pending[headLength...]
            if rest.isEmpty || rest.starts(with: Array("HTTP/1.".utf8)) { return headLength }
            guard pending.count >= headLength + contentLength else {
                require(false, "a \(code) response with \(rest.count) of its \(contentLength) body bytes")
                return nil
            }
            return headLength + contentLength
        }

        func finish() {
            require(upgraded || pending.isEmpty, "\(pending.count) bytes left that are no whole response")
        }
    }

    #if FUZZING
        @_cdecl("LLVMFuzzerTestOneInput")
        public func fuzzEntry(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
            fuzz(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        }

        @_cdecl("FuzzHTTPRequest_main")
        public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
            runFuzzer(argc, argv, fuzzEntry)
        }
    #else
        @main struct Replay {
            static func main() { CorpusReplay.run(target: "FuzzHTTPRequest", fuzz) }
        }
    #endif
#else
    import FuzzSupport

    @main struct Unavailable {
        static func main() { CorpusReplay.unavailable(target: "FuzzHTTPRequest") }
    }
#endif
