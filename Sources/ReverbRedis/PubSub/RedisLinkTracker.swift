import Logging
import NIOConcurrencyHelpers

/// Holds a client's `RedisLinkState` and logs each change once, in the words of spec `scaling.md` §5.6.
final class RedisLinkTracker: Sendable {
    private struct State {
        var link: RedisLinkState
        var everConnected = false
        var reportedFailure = false
        var reportedUnreachable = false
        var reconnects = 0
    }

    private let state: NIOLockedValueBox<State>
    private let role: String
    private let unreachableTimeout: Duration
    private let logger: Logger
    private let onChange: (@Sendable (RedisLinkState) -> Void)?

    init(options: RedisClientOptions, logger: Logger, onChange: (@Sendable (RedisLinkState) -> Void)?) {
        self.state = NIOLockedValueBox(State(link: .disconnected(since: .now)))
        self.role = options.role
        self.unreachableTimeout = options.unreachableTimeout
        self.logger = logger
        self.onChange = onChange
    }

    var link: RedisLinkState { state.withLockedValue { $0.link } }

    /// Connections made after the first.
    var reconnectCount: Int { state.withLockedValue { $0.reconnects } }

    func attempting(afterFailures failures: Int) {
        if failures > 0 || state.withLockedValue({ $0.everConnected }) {
            logger.debug("Attempting reconnection to Redis (\(role))")
        }
    }

    func connected() {
        let now = ContinuousClock.now
        let (previous, wasConnectedBefore) = state.withLockedValue { state in
            defer {
                if state.everConnected { state.reconnects += 1 }
                state.link = .connected(since: now)
                state.everConnected = true
            }
            return (state.link, state.everConnected)
        }
        if wasConnectedBefore {
            let seconds = Int((now - previous.since).seconds.rounded())
            logger.info("Redis connection restored after \(seconds) s (\(role))")
        } else {
            logger.info("Redis connection established (\(role))")
        }
        onChange?(.connected(since: now))
    }

    func disconnected(deliberately: Bool) {
        let now = ContinuousClock.now
        state.withLockedValue { state in
            state.link = .disconnected(since: now)
            state.reportedFailure = false
            state.reportedUnreachable = false
        }
        if deliberately {
            logger.info("Redis connection closed (\(role))")
        } else {
            logger.warning("Disconnected from Redis (\(role))")
        }
        onChange?(.disconnected(since: now))
    }

    func attemptFailed(_ error: RedisConnectionError) {
        let now = ContinuousClock.now
        let (first, unreachable) = state.withLockedValue { state in
            let first = !state.reportedFailure
            state.reportedFailure = true
            var unreachable = false
            if !state.reportedUnreachable, now - state.link.since >= unreachableTimeout {
                state.reportedUnreachable = true
                unreachable = true
            }
            return (first, unreachable)
        }
        if first {
            logger.warning("Cannot connect to Redis (\(role)): \(error.message)")
        } else {
            logger.debug("Redis connection attempt failed (\(role)): \(error.message)")
        }
        if unreachable {
            let seconds = Int(unreachableTimeout.seconds.rounded())
            logger.error("Redis unreachable for \(seconds) s (\(role)); serving local clients only")
        }
    }
}
