import NIOCore
import NIOWebSocket

extension WebSocketConnectionHandler {
    /// The rules of one connection, without I/O: events in (with the event loop's time), actions out.
    ///
    /// Opening sequence (`protocol.md` §1.3), how connections end (§1.5), keep-alive (§9), the
    /// sign-in timeout (§13.5) and the slow-consumer grace (`style.md` §4.3). The handler performs each action on its channel and
    /// schedules a timer at each deadline returned; a timer that fires calls the matching event.
    struct StateMachine {
        enum State: Equatable {
            case opening
            case open
            /// Our Close was sent; data frames are ignored until the client's Close or the timeout.
            case closing
            case closed
        }

        /// What the handler does after the opening checks.
        enum OpenAction: Equatable {
            /// Not opening (already open or ending): nothing.
            case none
            /// Register the connection and send `connection_established`.
            case establish
            /// Send this error, then close with its code (a `close` event).
            case fail(PusherError)
        }

        /// What the handler does with a frame read from the client.
        enum FrameAction: Equatable {
            /// Opening, closed, or a data frame after our Close: drop it.
            case ignore
            /// The client's Close answering ours: close TCP.
            case closeChannel
            /// Open: apply the frame rules and handle it (activity already recorded).
            case process
        }

        /// What one keep-alive sweep does to this connection.
        enum SweepAction: Equatable {
            case none
            /// Ping: a ping control frame when `controlFrame`, else `pusher:ping`.
            case ping(controlFrame: Bool)
            /// The previous sweep's ping is unanswered: fail with 4201.
            case prune
        }

        /// What the handler gives back when the connection ends; each is true at most once.
        struct Teardown: Equatable {
            /// Remove the connection from its shard and release its socket id.
            var unregister = false
            /// Give the app's connection slot back.
            var releaseConnectionSlot = false
        }

        /// Send a Close frame, tear down, and close TCP at `closeTimeout` unless the client's Close
        /// comes first.
        struct CloseAction: Equatable {
            var code: WebSocketErrorCode
            var reason: String
            var teardown: Teardown
            var closeTimeout: NIODeadline
            /// The close timeout restarts when the Close frame has been written (a
            /// `closeFrameWritten` event); `closeTimeout` bounds the wait for that.
            var restartTimeoutWhenWritten: Bool
        }

        /// A timer change for the slow-consumer grace.
        enum TimerChange: Equatable {
            case none
            case start(NIODeadline)
            case cancel
        }

        /// What the handler does when the channel's writability changes.
        struct WritabilityAction: Equatable {
            /// Read from the client only while it reads from us: a client that sends but does not
            /// read (a ping flood) would otherwise queue replies without bound.
            var autoRead: Bool
            var slowConsumerTimer: TimerChange
        }

        /// How long a subscriber may stay unwritable (not reading) before it is closed with 4100.
        static let slowConsumerGracePeriod = TimeAmount.seconds(5)
        /// How long the server waits for the client's Close after sending its own.
        static let closeHandshakeTimeout = TimeAmount.seconds(1)

        private(set) var state = State.opening
        /// The channel's writability as last reported: the broadcast path reads this field instead
        /// of the channel object of every recipient.
        private(set) var isWritable = true
        /// The client has sent a ping or pong control frame: keep-alive pings are control frames.
        private(set) var controlFramePings = false
        private var holdsConnectionSlot = false
        private var registered = false
        private var lastActivity = NIODeadline.uptimeNanoseconds(0)
        private var pinged = false
        private var slowConsumerDeadline: NIODeadline?
        private var closeDeadline: NIODeadline?
        private var closeTimeoutWaitsForWrite = false
        /// Closed then unless signed in (`user_authentication_timeout`, `protocol.md` §13.5).
        private var userAuthenticationDeadline: NIODeadline?
        /// A sign-in has succeeded on this connection.
        private(set) var signedIn = false

        /// The longest sign-in timeout honoured (a century): any integer passes validation, and a
        /// huge one must not trap when converted to nanoseconds.
        static let maximumUserAuthenticationTimeout = 3_153_600_000

        // MARK: Opening

        /// The channel is active: the opening checks in order (§1.3), each evaluated only when the
        /// ones before it passed.
        /// - Parameters:
        ///   - reserveSlot: takes one of the app's connection slots; false when over quota.
        ///   - originAllowed: whether the `Origin` header passes the app's `allowed_origins`.
        mutating func open(
            now: NIODeadline, appFound: Bool, reserveSlot: () -> Bool, originAllowed: () -> Bool
        ) -> OpenAction {
            guard state == .opening else { return .none }
            guard appFound else { return .fail(.applicationDoesNotExist) }
            guard holdsConnectionSlot || reserveSlot() else { return .fail(.overConnectionQuota) }
            holdsConnectionSlot = true
            guard originAllowed() else { return .fail(.originNotAllowed) }
            state = .open
            registered = true
            lastActivity = now
            return .establish
        }

        // MARK: Reading

        /// A frame from the client, valid or not: while open it is activity (§9).
        mutating func frameReceived(opcode: WebSocketOpcode, now: NIODeadline) -> FrameAction {
            switch state {
            case .opening, .closed:
                return .ignore
            case .closing:
                return opcode == .connectionClose ? .closeChannel : .ignore
            case .open:
                lastActivity = now
                pinged = false
                if opcode == .ping || opcode == .pong { controlFramePings = true }
                return .process
            }
        }

        // MARK: Keep-alive

        /// One keep-alive sweep (§9): prune if an earlier sweep pinged, else ping when idle.
        mutating func sweep(now: NIODeadline, pingInterval: TimeAmount) -> SweepAction {
            guard state == .open else { return .none }
            if pinged { return .prune }
            guard now - lastActivity >= pingInterval else { return .none }
            pinged = true
            return .ping(controlFrame: controlFramePings)
        }

        // MARK: Closing

        /// Our Close: from opening or open only; nil once closing or closed.
        /// - Parameter timeoutAfterWritten: when set, the close timeout starts once the Close frame
        ///   is written to the socket, within at most this long.
        mutating func close(
            code: WebSocketErrorCode, reason: String, now: NIODeadline, timeoutAfterWritten: TimeAmount? = nil
        ) -> CloseAction? {
            guard state == .opening || state == .open else { return nil }
            state = .closing
            slowConsumerDeadline = nil
            let deadline = now + (timeoutAfterWritten ?? .zero) + Self.closeHandshakeTimeout
            closeDeadline = deadline
            closeTimeoutWaitsForWrite = timeoutAfterWritten != nil
            return CloseAction(
                code: code, reason: reason, teardown: takeTeardown(), closeTimeout: deadline,
                restartTimeoutWhenWritten: closeTimeoutWaitsForWrite)
        }

        /// Our Close frame was written: the new close timeout, when it waited for this.
        mutating func closeFrameWritten(now: NIODeadline) -> NIODeadline? {
            guard state == .closing, closeTimeoutWaitsForWrite else { return nil }
            closeTimeoutWaitsForWrite = false
            let deadline = now + Self.closeHandshakeTimeout
            closeDeadline = deadline
            return deadline
        }

        /// The close timer fired: true when TCP is to be closed now.
        mutating func closeTimeoutFired(now: NIODeadline) -> Bool {
            guard state == .closing, let closeDeadline, now >= closeDeadline else { return false }
            self.closeDeadline = nil
            return true
        }

        /// TCP closed.
        mutating func channelInactive() -> Teardown {
            state = .closed
            slowConsumerDeadline = nil
            closeDeadline = nil
            return takeTeardown()
        }

        /// The handler left the pipeline (the channel may stay open).
        mutating func handlerRemoved() -> Teardown {
            takeTeardown()
        }

        private mutating func takeTeardown() -> Teardown {
            defer {
                registered = false
                holdsConnectionSlot = false
            }
            return Teardown(unregister: registered, releaseConnectionSlot: holdsConnectionSlot)
        }

        // MARK: Sign-in timeout

        /// Right after `establish`: the deadline by which the connection must sign in, nil when the
        /// app's `user_authentication_timeout` is 0 (off).
        mutating func startUserAuthenticationTimeout(seconds: Int, now: NIODeadline) -> NIODeadline? {
            guard state == .open, seconds > 0, !signedIn else { return nil }
            let deadline = now + .seconds(Int64(min(seconds, Self.maximumUserAuthenticationTimeout)))
            userAuthenticationDeadline = deadline
            return deadline
        }

        /// A sign-in succeeded; only this stops the clock. True when a timer is to be cancelled.
        mutating func signInSucceeded() -> Bool {
            signedIn = true
            defer { userAuthenticationDeadline = nil }
            return userAuthenticationDeadline != nil
        }

        /// The sign-in timer fired: true when the connection fails with the timeout error (4009).
        mutating func userAuthenticationTimerFired(now: NIODeadline) -> Bool {
            guard state == .open, !signedIn, let deadline = userAuthenticationDeadline, now >= deadline else {
                return false
            }
            userAuthenticationDeadline = nil
            return true
        }

        // MARK: Slow consumer

        mutating func writabilityChanged(isWritable: Bool, now: NIODeadline) -> WritabilityAction {
            self.isWritable = isWritable
            if isWritable {
                let hadTimer = slowConsumerDeadline != nil
                slowConsumerDeadline = nil
                return WritabilityAction(autoRead: true, slowConsumerTimer: hadTimer ? .cancel : .none)
            }
            return WritabilityAction(autoRead: false, slowConsumerTimer: startSlowConsumerGrace(now: now))
        }

        /// A broadcast frame was dropped because the client is not reading.
        mutating func broadcastDropped(now: NIODeadline) -> TimerChange {
            startSlowConsumerGrace(now: now)
        }

        private mutating func startSlowConsumerGrace(now: NIODeadline) -> TimerChange {
            guard state == .open, slowConsumerDeadline == nil else { return .none }
            let deadline = now + Self.slowConsumerGracePeriod
            slowConsumerDeadline = deadline
            return .start(deadline)
        }

        /// The slow-consumer timer fired: Close 4100 `Over capacity` if the client is still not
        /// reading. Nothing more is written behind that Close; what NIO and the kernel already hold
        /// goes first, so the close timeout starts once the Close itself has left (bounded by the
        /// grace period), and the client sees 4100 rather than a dropped connection.
        mutating func slowConsumerTimerFired(now: NIODeadline) -> CloseAction? {
            guard let deadline = slowConsumerDeadline, now >= deadline else { return nil }
            slowConsumerDeadline = nil
            guard !isWritable else { return nil }
            return close(
                code: WebSocketErrorCode(codeNumber: 4100), reason: "Over capacity", now: now,
                timeoutAfterWritten: Self.slowConsumerGracePeriod)
        }
    }
}
