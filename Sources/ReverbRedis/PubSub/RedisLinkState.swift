/// Whether a publisher or subscriber currently has a ready Redis connection, and since when.
public enum RedisLinkState: Sendable, Equatable {
    /// Ready (publisher: answered `PING`; subscriber: subscription confirmed).
    case connected(since: ContinuousClock.Instant)
    /// Not ready: never connected yet, or lost, since that instant.
    case disconnected(since: ContinuousClock.Instant)

    /// `true` for `.connected`.
    public var isConnected: Bool {
        if case .connected = self { return true }
        return false
    }

    /// When the current state began.
    public var since: ContinuousClock.Instant {
        switch self {
        case .connected(let since), .disconnected(let since): since
        }
    }

    /// Whether the link has been down for `timeout` or longer (`degraded` in spec `scaling.md` §5.6).
    public func isDegraded(timeout: Duration, now: ContinuousClock.Instant = .now) -> Bool {
        if case .disconnected(let since) = self { return now - since >= timeout }
        return false
    }
}
