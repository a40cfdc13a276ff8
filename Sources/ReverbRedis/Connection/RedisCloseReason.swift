import NIOConcurrencyHelpers

/// Why a connection closed, written by `RedisChannelHandler` on the event loop and read by
/// `RedisConnection` when a write finds the channel already closed.
final class RedisCloseReason: Sendable {
    private let value = NIOLockedValueBox<RedisConnectionError?>(nil)

    /// The first reason recorded, if any.
    var error: RedisConnectionError? { value.withLockedValue { $0 } }

    /// Records `error` unless a reason is already known.
    func record(_ error: RedisConnectionError) {
        value.withLockedValue { current in
            if current == nil { current = error }
        }
    }
}
