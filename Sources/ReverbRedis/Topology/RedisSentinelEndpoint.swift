public import Logging
import NIOConcurrencyHelpers
public import NIOCore
public import NIOPosix

/// The primary of a Sentinel deployment (`REDIS_SENTINELS`), shared by every client of one
/// `RedisClientFactory`: each connection attempt asks the sentinels where the primary is, each new
/// connection must answer `ROLE` with `master`, and a change of primary closes every connection it
/// accepted, so that the clients reconnect, through `resolve`, to the new one.
///
/// - `resolve` asks the sentinels in order, each within the data nodes' `connectTimeout`, with
///   `AUTH <REDIS_SENTINEL_PASSWORD>` when set and the data nodes' TLS settings when TLS is on,
///   `SENTINEL get-master-addr-by-name <master>`. A sentinel that cannot be reached, does not know
///   the master or answers nil is skipped; the one that answers moves to the front for next time.
///   The primary named is reached with the data nodes' username, password, database and TLS.
/// - `accept` refuses anything but a primary (a demoted old primary that comes back is a replica
///   until the sentinels reconfigure it: it must never be written to).
/// - The primary changes when a sentinel announces `+switch-master` for our master (heard by a
///   `RedisSentinelWatcher`) or when `resolve` learns a new address; connections on any other
///   address are closed at once.
public final class RedisSentinelEndpoint: RedisEndpointResolver {
    public typealias Endpoint = RedisConnectionConfiguration.Endpoint

    /// Where the sentinels are and which master to ask them for.
    public let sentinel: RedisSentinelConfiguration
    /// The data nodes' username, password, database, TLS and connect timeout (its endpoint is unused).
    public let dataNode: RedisConnectionConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let state: NIOLockedValueBox<State>

    /// Changed when a sentinel answers or announces a switch and when a connection is accepted or
    /// closes; the lock covers dictionary and array updates only, never I/O or a log.
    private struct State {
        /// The sentinels in the order to ask them: the one that answered last first.
        var order: [Endpoint]
        /// The primary the sentinels named last.
        var primary: Endpoint?
        /// Accepted data connections still open, closed when the primary changes.
        var connections: [ObjectIdentifier: RedisConnection] = [:]
        /// Changes of primary seen after the first answer.
        var switches = 0
    }

    /// - Parameters:
    ///   - sentinel: The sentinels (asked in this order at first), the master's name and the sentinels' password.
    ///   - dataNode: Credentials, database, TLS and connect timeout for the primary (and TLS and
    ///     timeout for the sentinels).
    ///   - eventLoopGroup: Carries the short-lived connections to the sentinels.
    public init(
        sentinel: RedisSentinelConfiguration,
        dataNode: RedisConnectionConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        precondition(!sentinel.sentinels.isEmpty, "a Sentinel deployment needs at least one sentinel")
        self.sentinel = sentinel
        self.dataNode = dataNode
        self.eventLoopGroup = eventLoopGroup
        self.state = NIOLockedValueBox(State(order: sentinel.sentinels))
    }

    /// The primary the sentinels named last; `nil` before the first answer.
    public var primary: Endpoint? { state.withLockedValue { $0.primary } }
    /// How many times the primary changed since the first answer.
    public var switchCount: Int { state.withLockedValue { $0.switches } }
    /// The order in which the sentinels are asked next.
    public var sentinelOrder: [Endpoint] { state.withLockedValue { $0.order } }
    /// Accepted connections still open.
    public var acceptedConnectionCount: Int { state.withLockedValue { $0.connections.count } }

    public func resolve(logger: Logger) async throws(RedisConnectionError) -> RedisConnectionConfiguration {
        var configuration = dataNode
        configuration.endpoint = try await askPrimary(logger: logger)
        return configuration
    }

    public func accept(_ connection: RedisConnection, logger: Logger) async throws(RedisConnectionError) {
        let reply: RESPValue
        do {
            reply = try await connection.send(["ROLE"])
        } catch let error where error.kind == .errorReply {
            throw RedisConnectionError(
                .errorReply,
                "\(error.message) (swift-reverb asks ROLE to make sure it writes to the primary of "
                    + "\"\(sentinel.masterName)\" only: allow +role for the ACL user)")
        }
        let role = Self.role(fromReply: reply)
        guard role == "master" else {
            let described = role.map { $0 == "slave" ? "a replica" : "a \($0)" } ?? "of unknown role (\(reply))"
            throw RedisConnectionError(
                .notPrimary,
                "Redis at \(connection.endpoint) is \(described), not the primary of \"\(sentinel.masterName)\"; "
                    + "asking the sentinels again")
        }
        let id = ObjectIdentifier(connection)
        let movedTo: Endpoint? = state.withLockedValue { state in
            if let primary = state.primary, primary != connection.endpoint { return primary }
            state.connections[id] = connection
            return nil
        }
        if let movedTo {
            throw RedisConnectionError(
                .notPrimary,
                "The primary of \"\(sentinel.masterName)\" moved from \(connection.endpoint) to \(movedTo) "
                    + "while connecting; asking the sentinels again")
        }
        connection.closeFuture.whenComplete { _ in
            _ = self.state.withLockedValue { $0.connections.removeValue(forKey: id) }
        }
    }

    /// Sleeps `delay`, but returns as soon as the primary changed: after a primary died, the
    /// clients' attempts fail until the sentinels promote a replica, and the `+switch-master` then
    /// starts the next attempt at once instead of after the rest of the backoff (up to 5 s). Checks
    /// every 50 ms, only while a client waits to reconnect.
    public func pause(for delay: Duration) async throws {
        let seen = switchCount
        let deadline = ContinuousClock.now + delay
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: min(deadline - ContinuousClock.now, .milliseconds(50)))
            if switchCount != seen { return }
        }
    }

    /// Asks the sentinels, in order, for the primary's address and records it (`primaryChanged`).
    ///
    /// - Throws: `RedisConnectionError` naming the master and every sentinel asked, when none named it.
    @discardableResult
    func askPrimary(logger: Logger) async throws(RedisConnectionError) -> Endpoint {
        let order = state.withLockedValue { $0.order }
        var failures: [String] = []
        for sentinel in order {
            do throws(RedisConnectionError) {
                let connection = try await RedisConnection.connect(
                    configuration: configuration(forSentinel: sentinel), eventLoopGroup: eventLoopGroup,
                    pingInterval: nil, logger: logger)
                let reply: RESPValue
                do throws(RedisConnectionError) {
                    reply = try await connection.send(["SENTINEL", "get-master-addr-by-name", self.sentinel.masterName])
                } catch {
                    await connection.close()
                    throw error
                }
                await connection.close()
                guard let address = Self.address(fromReply: reply) else {
                    failures.append("\(sentinel) does not know it")
                    continue
                }
                primaryChanged(to: address, announcedBy: sentinel, logger: logger)
                return address
            } catch {
                failures.append("\(sentinel): \(error.message)")
            }
        }
        throw RedisConnectionError(
            .connectFailed,
            "No sentinel named the primary of \"\(sentinel.masterName)\" (asked \(order.count)): "
                + failures.joined(separator: "; "))
    }

    /// Records `address` as the primary and moves `sentinel` to the front of the order; when the
    /// primary changed, closes every accepted connection to another address and logs the switch.
    func primaryChanged(to address: Endpoint, announcedBy sentinel: Endpoint?, logger: Logger) {
        let (previous, stale): (Endpoint?, [RedisConnection]) = state.withLockedValue { state in
            if let sentinel { state.order = Self.preferring(sentinel, in: state.order) }
            let previous = state.primary
            state.primary = address
            guard let previous, previous != address else { return (nil, []) }
            state.switches += 1
            return (previous, state.connections.values.filter { $0.endpoint != address })
        }
        guard let previous else { return }
        logger.info(
            "Redis Sentinel switched the primary of \"\(self.sentinel.masterName)\" from \(previous) to \(address)",
            metadata: ["closing_connections": "\(stale.count)"])
        for connection in stale { connection.channel.close(promise: nil) }
    }

    /// Handles a message a `RedisSentinelWatcher` heard from `sentinel` on `+switch-master`.
    func heard(_ message: RedisPubSubMessage, from sentinel: Endpoint?, logger: Logger) {
        let text = String(buffer: message.payload)
        guard let change = Self.switchMaster(text, master: self.sentinel.masterName) else {
            if Self.switchMaster(text, master: nil) == nil {
                logger.debug("Ignoring an unreadable +switch-master message", metadata: ["message": "\(text)"])
            }
            return
        }
        primaryChanged(to: change.new, announcedBy: sentinel, logger: logger)
    }

    /// How to reach `sentinel`: the sentinels' password, the data nodes' TLS and connect timeout.
    func configuration(forSentinel sentinel: Endpoint) -> RedisConnectionConfiguration {
        RedisConnectionConfiguration(
            endpoint: sentinel, password: self.sentinel.password, connectTimeout: dataNode.connectTimeout,
            tls: dataNode.tls)
    }

    // MARK: - Rules (no I/O)

    /// `order` with `sentinel` moved to the front (the others keep their order).
    static func preferring(_ sentinel: Endpoint, in order: [Endpoint]) -> [Endpoint] {
        guard let index = order.firstIndex(of: sentinel), index != 0 else { return order }
        var order = order
        order.insert(order.remove(at: index), at: 0)
        return order
    }

    /// The address in a `SENTINEL get-master-addr-by-name` reply (`[host, port]`); `nil` for the nil
    /// reply of a sentinel that does not know the master, or anything unreadable.
    static func address(fromReply reply: RESPValue) -> Endpoint? {
        guard case .array(let items?) = reply, items.count == 2, let host = items[0].string, !host.isEmpty,
            let portText = items[1].string, let port = Int(portText), (1...65535).contains(port)
        else { return nil }
        return .tcp(host: host, port: port)
    }

    /// The first element of a `ROLE` reply: `master`, `slave` or `sentinel`.
    static func role(fromReply reply: RESPValue) -> String? {
        guard case .array(let items?) = reply else { return nil }
        return items.first?.string
    }

    /// Reads a `+switch-master` message, `<master> <old-ip> <old-port> <new-ip> <new-port>`; `nil`
    /// when unreadable or about another master (`master` `nil`: any master).
    static func switchMaster(_ text: String, master: String?) -> (old: Endpoint, new: Endpoint)? {
        let fields = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard fields.count == 5, master == nil || fields[0] == master,
            let oldPort = Int(fields[2]), let newPort = Int(fields[4]),
            (1...65535).contains(oldPort), (1...65535).contains(newPort)
        else { return nil }
        return (.tcp(host: fields[1], port: oldPort), .tcp(host: fields[3], port: newPort))
    }
}
