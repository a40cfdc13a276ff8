import Synchronization

/// Why a connection closed, written by `RedisChannelHandler` on the event loop and read by
/// `RedisConnection` when a write finds the channel already closed.
final class RedisCloseReason: Sendable {
    private let value = Mutex<RedisConnectionError?>(nil)

    /// The first reason recorded, if any.
    var error: RedisConnectionError? { value.withLock { $0 } }

    /// Records `error` unless a reason is already known.
    func record(_ error: RedisConnectionError) {
        value.withLock { current in
            if current == nil { current = error }
        }
    }
}
