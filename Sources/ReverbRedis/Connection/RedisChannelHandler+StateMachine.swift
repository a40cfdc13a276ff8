import NIOCore

extension RedisChannelHandler {
    /// The rules of a Redis connection without the channel: which command a reply answers, which
    /// replies are pub/sub pushes (`message`, `pmessage`, sharded `smessage`, and the `sunsubscribe`
    /// a Redis Cluster node sends unasked when a slot moves away or the node becomes a replica),
    /// and when the health check gives up (spec `scaling.md` §5.2).
    ///
    /// Generic over `Promise`, what a caller waits on, so tests drive it with plain values. Every event
    /// returns the one thing the handler must do next.
    struct StateMachine<Promise> {
        enum Action {
            /// Send the command: it is now waiting for its replies.
            case write
            /// Complete `promise` with `reply` (an error reply included).
            case succeed(Promise, RESPValue)
            /// The connection is closed or closing: fail the command instead of sending it.
            case fail(Promise?, RedisConnectionError)
            /// The connection closed: fail every command still waiting.
            case failAll([Promise], RedisConnectionError)
            /// Hand a `message`, `pmessage` or `smessage` push to the subscriber.
            case deliver(RedisPubSubMessage)
            /// The server dropped a sharded subscription nobody asked to drop (its slot moved, or
            /// the node is no longer a primary): tell the subscriber, which subscribes elsewhere.
            case shardUnsubscribed(String)
            /// Write and flush a health-check `PING`.
            case sendPing
            /// Close the connection; `reason` is what later commands fail with.
            case close(RedisConnectionError)
            /// A fire-and-forget command was refused: log Redis's text.
            case logRefused(String)
            /// A reply no command was waiting for: log it.
            case logUnexpected(RESPValue)
            /// Nothing to do.
            case none
        }

        private struct Pending {
            enum Owner {
                case caller(Promise?)
                case healthCheck
            }
            var owner: Owner
            var remaining: Int
            var collected: [RESPValue] = []
            /// A `SUNSUBSCRIBE`'s channels not yet confirmed: a `sunsubscribe` push for another
            /// channel is unsolicited, not one of its replies.
            var unsubscribing: [String]?
        }

        private enum State {
            case open
            /// A close was asked for; the channel has not gone inactive yet.
            case closing(RedisConnectionError)
            case closed(RedisConnectionError)
        }

        private var state = State.open
        private var pending = CircularBuffer<Pending>()
        /// Whether a `subscribe` confirmation arrived and no `unsubscribe` left zero subscriptions since.
        private(set) var isSubscribed = false
        private var healthCheckOutstanding = false
        private let peer: String
        private let pingInterval: TimeAmount?

        /// - Parameters:
        ///   - peer: Where the connection goes, for error messages.
        ///   - pingInterval: The health-check period, for the message when a `PING` goes unanswered.
        init(peer: String, pingInterval: TimeAmount?) {
            self.peer = peer
            self.pingInterval = pingInterval
        }

        /// The reason the connection closed or is closing, if it is.
        var closeReason: RedisConnectionError? {
            switch state {
            case .open: nil
            case .closing(let reason), .closed(let reason): reason
            }
        }

        /// A caller sends a command answered by `expectedReplies` replies (at least one).
        ///
        /// - Parameter unsubscribing: For `SUNSUBSCRIBE`, its channels (whose confirmations are its replies).
        mutating func commandSent(expectedReplies: Int, promise: Promise?, unsubscribing: [String]? = nil) -> Action {
            if let reason = closeReason { return .fail(promise, reason) }
            pending.append(
                Pending(owner: .caller(promise), remaining: max(1, expectedReplies), unsubscribing: unsubscribing))
            return .write
        }

        /// hiredis decoded one reply.
        mutating func replyDecoded(_ reply: RESPValue) -> Action {
            if case .array(let elements?) = reply, let kind = elements.first?.string {
                switch kind {
                case "message" where isSubscribed && elements.count == 3:
                    return deliver(channel: elements[1], payload: elements[2])
                case "pmessage" where isSubscribed && elements.count == 4:
                    return deliver(channel: elements[2], payload: elements[3])
                case "smessage" where isSubscribed && elements.count == 3:
                    return deliver(channel: elements[1], payload: elements[2])
                case "subscribe", "psubscribe", "ssubscribe":
                    isSubscribed = true
                case "unsubscribe", "punsubscribe":
                    if case .integer(0) = elements.last { isSubscribed = false }
                case "sunsubscribe" where elements.count == 3:
                    if case .integer(0) = elements.last { isSubscribed = false }
                    let channel = elements[1].string ?? ""
                    guard var head = pending.first, var channels = head.unsubscribing,
                        let index = channels.firstIndex(of: channel)
                    else { return .shardUnsubscribed(channel) }
                    channels.remove(at: index)
                    head.unsubscribing = channels
                    pending[pending.startIndex] = head
                default:
                    break
                }
            }
            guard var entry = pending.popFirst() else { return .logUnexpected(reply) }
            if case .error = reply { return complete(entry.owner, with: reply) }
            entry.remaining -= 1
            entry.collected.append(reply)
            if entry.remaining > 0 {
                pending.prepend(entry)
                return .none
            }
            return complete(entry.owner, with: entry.collected.count == 1 ? reply : .array(entry.collected))
        }

        /// The health-check period elapsed: send a `PING`, or close when the previous one is unanswered.
        mutating func healthCheckTick() -> Action {
            guard case .open = state else { return .none }
            if healthCheckOutstanding {
                let interval = pingInterval.map(Self.describe) ?? "the interval"
                return close(
                    RedisConnectionError(.connectionClosed, "Redis at \(peer) did not answer PING within \(interval)"))
            }
            healthCheckOutstanding = true
            pending.append(Pending(owner: .healthCheck, remaining: 1))
            return .sendPing
        }

        /// The bytes received are not RESP2 (hiredis' `errstr` in `message`).
        mutating func decodeFailed(_ message: String) -> Action {
            close(RedisConnectionError(.protocolError, "Invalid reply from Redis at \(peer): \(message)"))
        }

        /// The pipeline reported an error (TLS, socket).
        mutating func errorCaught(_ reason: RedisConnectionError) -> Action {
            close(reason)
        }

        /// The channel went inactive: every waiting command fails with the first reason known.
        mutating func connectionClosed() -> Action {
            let reason =
                closeReason ?? RedisConnectionError(.connectionClosed, "Redis at \(peer) closed the connection")
            if case .closed = state { return .none }
            state = .closed(reason)
            var promises: [Promise] = []
            while let entry = pending.popFirst() {
                if case .caller(let promise?) = entry.owner { promises.append(promise) }
            }
            return .failAll(promises, reason)
        }

        private mutating func close(_ reason: RedisConnectionError) -> Action {
            guard case .open = state else { return .none }
            state = .closing(reason)
            return .close(reason)
        }

        private mutating func complete(_ owner: Pending.Owner, with reply: RESPValue) -> Action {
            switch owner {
            case .caller(let promise?):
                return .succeed(promise, reply)
            case .caller(nil):
                if case .error(let text) = reply { return .logRefused(text) }
                return .none
            case .healthCheck:
                healthCheckOutstanding = false
                return .none
            }
        }

        private func deliver(channel: RESPValue, payload: RESPValue) -> Action {
            guard case .bulkString(let bytes?) = payload else { return .none }
            return .deliver(RedisPubSubMessage(channel: channel.string ?? "", payload: bytes))
        }

        private static func describe(_ amount: TimeAmount) -> String {
            let milliseconds = amount.nanoseconds / 1_000_000
            return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(milliseconds) ms"
        }
    }
}

extension RedisChannelHandler.StateMachine.Action: Equatable where Promise: Equatable {}
