import NIOCore
import NIOHTTP1

/// The rules of one plain-HTTP connection (`http-api.md` §1), without I/O: `HTTPServerHandler`
/// turns channel events into calls and carries out the returned actions.
///
/// - Size: request line + headers + body over `max_request_size` get `413` and close, checked on the
///   declared `Content-Length` and again on every body chunk, so nothing past the limit is kept.
/// - Time: one idle deadline, armed when the connection opens and after each response, cut only by
///   a complete request; so an idle connection and a request still incomplete when it passes are both
///   closed without a response. Time is passed in, never read.
/// - Keep-alive: HTTP/1.1 unless `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`;
///   pipelined requests arrive one at a time (NIO's `HTTPServerPipelineHandler` holds the rest, and
///   asks for no input while a response is outstanding, so it holds at most one read's worth).
/// - Back-pressure: while the channel is unwritable, read requests are held, so a client that sends
///   requests without reading the replies stops being read instead of queueing replies without bound:
///   replies waiting in NIO stay near the 64 KiB high mark plus the answers to one read.
/// - Quiescing: an idle connection closes at once; one with a request in flight answers it with
///   `Connection: close`, then closes.
struct HTTPConnectionStateMachine {
    struct Configuration {
        /// `max_request_size`: request line + headers + body, in bytes.
        var maxRequestSize: Int
        /// The server path prefix as segments (`ws/v1` → `["ws", "v1"]`).
        var prefixSegments: [String]
        /// Idle connections, and requests still incomplete, are closed after this long.
        var idleTimeout = TimeAmount.seconds(15)
        /// `{prefix}/metrics` is served here (metrics on, without a port of their own).
        var servesMetrics = false
        /// `{prefix}/dashboard/...` is served here (`dashboard.enabled`).
        var servesDashboard = false
    }

    enum Action: Equatable {
        case none
        /// Write and flush an interim `100 Continue` head.
        case sendContinue(HTTPVersion)
        /// Cancel the idle timer and answer the request, then call `responseReady(_:now:)`.
        case dispatch(head: HTTPRequestHead, route: Route, body: ByteBuffer)
        /// Write and flush `response` (its body only when `withBody`), then arm the idle timer for
        /// `idleDeadline`. With `keepAlive` false, call `closingResponseWritten()` once it is written.
        case respond(HTTPResponse, version: HTTPVersion, keepAlive: Bool, withBody: Bool, idleDeadline: NIODeadline)
        /// Cancel the idle timer and switch to WebSocket (`101` with `headers`), once the HTTP decoder
        /// has returned from the current read.
        case startUpgrade(head: HTTPRequestHead, key: String, headers: HTTPHeaders)
        /// Schedule the idle timer for this deadline, replacing any other.
        case armIdleTimer(NIODeadline)
        case cancelIdleTimer
        /// Pass a read request on towards the socket.
        case read
        /// Close the connection now.
        case close
    }

    private enum State {
        /// Between requests: waiting for a request head.
        case idle
        case receiving(head: HTTPRequestHead, route: Route?, body: ByteBuffer, size: Int)
        case upgrading(head: HTTPRequestHead, key: String, headers: HTTPHeaders)
        /// The request was dispatched; its response is not written yet.
        case responding(head: HTTPRequestHead)
        /// A response that closes the connection was sent, the connection is closed or switched to
        /// WebSocket: input is ignored.
        case closing
    }

    let configuration: Configuration
    private var state = State.idle
    /// When the idle timer the handler holds should fire, if one is armed.
    private(set) var idleDeadline: NIODeadline?
    private(set) var isQuiescing = false
    private var isWritable = true
    /// A read request was held back while unwritable; pass it on when writable again.
    private var isReadHeld = false

    init(configuration: Configuration) {
        self.configuration = configuration
    }

    // MARK: Connection

    /// The connection is open (or the handler joined an open one).
    mutating func channelActive(now: NIODeadline) -> Action {
        guard case .idle = state else { return .none }
        return armIdleTimer(now: now)
    }

    /// The connection is closed: nothing more will happen.
    mutating func channelInactive() -> Action {
        state = .closing
        return cancelIdleTimer()
    }

    mutating func idleTimerFired(now: NIODeadline) -> Action {
        guard let deadline = idleDeadline, now >= deadline else { return .none }
        idleDeadline = nil
        state = .closing
        return .close
    }

    // MARK: Reading

    mutating func receivedHead(_ head: HTTPRequestHead, now: NIODeadline) -> Action {
        guard case .idle = state else { return .none }
        let limit = configuration.maxRequestSize
        let headSize = Self.estimatedSize(of: head)
        guard headSize <= limit else { return respond(.payloadTooLarge, to: head, now: now, forceClose: true) }
        if let length = head.headers.first(name: "content-length").flatMap(Int.init), headSize + length > limit {
            return respond(.payloadTooLarge, to: head, now: now, forceClose: true)
        }
        let path = HTTPAPIRequest.split(head.uri).path
        let route = Route.match(
            path: path, prefixSegments: configuration.prefixSegments, metrics: configuration.servesMetrics,
            dashboard: configuration.servesDashboard)
        if case .webSocket(let key)? = route {
            switch WebSocketHandshake.validate(head) {
            case .failure(let refusal):
                return respond(refusal, to: head, now: now, forceClose: true)
            case .success(let headers):
                state = .upgrading(head: head, key: key, headers: headers)
                return .none
            }
        }
        state = .receiving(head: head, route: route, body: ByteBuffer(), size: headSize)
        if head.headers["expect"].contains(where: { $0.lowercased() == "100-continue" }) {
            return .sendContinue(head.version)
        }
        return .none
    }

    mutating func receivedBody(_ chunk: ByteBuffer, now: NIODeadline) -> Action {
        guard case .receiving(let head, let route, var body, let size) = state else { return .none }
        let newSize = size + chunk.readableBytes
        guard newSize <= configuration.maxRequestSize else {
            return respond(.payloadTooLarge, to: head, now: now, forceClose: true)
        }
        // Leaves `state` without a second reference to the body, so appending does not copy it.
        state = .closing
        if body.readableBytes == 0 {
            body = chunk
        } else {
            var chunk = chunk
            body.writeBuffer(&chunk)
        }
        state = .receiving(head: head, route: route, body: body, size: newSize)
        return .none
    }

    mutating func receivedEnd(now: NIODeadline) -> Action {
        switch state {
        case .receiving(let head, let route, let body, _):
            guard let route else { return respond(.notFound, to: head, now: now) }
            guard route.allowedMethods.contains(head.method.rawValue) else {
                return respond(.methodNotAllowed(allow: route.allowedMethods), to: head, now: now)
            }
            state = .responding(head: head)
            idleDeadline = nil
            return .dispatch(head: head, route: route, body: body)
        case .upgrading(let head, let key, let headers):
            state = .closing
            idleDeadline = nil
            return .startUpgrade(head: head, key: key, headers: headers)
        case .idle, .responding, .closing:
            return .none
        }
    }

    /// An error from the pipeline: a malformed request gets one answer, anything else closes.
    mutating func errorCaught(_ error: any Error, now: NIODeadline) -> Action {
        // A reset connection or a failed TLS handshake has nobody to answer (and the pipelining
        // handler allows a response only for a parser error).
        guard let parserError = error as? HTTPParserError else {
            state = .closing
            return .close
        }
        switch state {
        case .idle, .receiving:
            // Nothing of the request is known: answer as HTTP/1.1, with the body.
            let response: HTTPResponse = parserError == .headerOverflow ? .payloadTooLarge : .badRequest
            state = .closing
            return respond(response, version: .http1_1, keepAlive: false, withBody: true, now: now)
        case .upgrading, .responding, .closing:
            state = .closing
            return .close
        }
    }

    // MARK: Writing

    /// The answer to the dispatched request.
    mutating func responseReady(_ response: HTTPResponse, now: NIODeadline) -> Action {
        guard case .responding(let head) = state else { return .none }
        return respond(response, to: head, now: now)
    }

    /// A response with `keepAlive` false has been written (or failed to be).
    mutating func closingResponseWritten() -> Action {
        guard case .closing = state else { return .none }
        return .close
    }

    mutating func writabilityChanged(isWritable: Bool) -> Action {
        self.isWritable = isWritable
        guard isWritable, isReadHeld else { return .none }
        isReadHeld = false
        return .read
    }

    /// The pipeline asks for more input.
    mutating func readRequested() -> Action {
        guard isWritable else {
            isReadHeld = true
            return .none
        }
        return .read
    }

    /// The handler leaves the pipeline: a held read must not be lost for the handlers after it.
    mutating func handlerRemoved() -> Action {
        idleDeadline = nil
        guard isReadHeld else { return .none }
        isReadHeld = false
        return .read
    }

    // MARK: Shutdown

    /// Graceful shutdown: close when idle, else after answering the request in flight.
    mutating func quiesce() -> Action {
        isQuiescing = true
        switch state {
        case .idle, .upgrading:
            state = .closing
            idleDeadline = nil
            return .close
        case .receiving, .responding, .closing:
            return .none
        }
    }

    // MARK: Helpers

    /// Request line + headers as sent, approximately: what counts against `max_request_size`.
    static func estimatedSize(of head: HTTPRequestHead) -> Int {
        var size = head.method.rawValue.utf8.count + head.uri.utf8.count + 12
        for (name, value) in head.headers { size += name.utf8.count + value.utf8.count + 4 }
        return size + 2
    }

    private mutating func respond(
        _ response: HTTPResponse, to head: HTTPRequestHead, now: NIODeadline, forceClose: Bool = false
    ) -> Action {
        let keepAlive = head.isKeepAlive && !forceClose && !response.closeConnection && !isQuiescing
        state = keepAlive ? .idle : .closing
        return respond(response, version: head.version, keepAlive: keepAlive, withBody: head.method != .HEAD, now: now)
    }

    /// The idle deadline is armed after a closing response too: a client that never reads it would
    /// otherwise hold the connection open.
    private mutating func respond(
        _ response: HTTPResponse, version: HTTPVersion, keepAlive: Bool, withBody: Bool, now: NIODeadline
    ) -> Action {
        let deadline = now + configuration.idleTimeout
        idleDeadline = deadline
        return .respond(response, version: version, keepAlive: keepAlive, withBody: withBody, idleDeadline: deadline)
    }

    private mutating func armIdleTimer(now: NIODeadline) -> Action {
        let deadline = now + configuration.idleTimeout
        idleDeadline = deadline
        return .armIdleTimer(deadline)
    }

    private mutating func cancelIdleTimer() -> Action {
        guard idleDeadline != nil else { return .none }
        idleDeadline = nil
        return .cancelIdleTimer
    }
}
