import NIOConcurrencyHelpers
import NIOCore

/// One app's channel bookkeeping on this node: subscriptions, the cluster-wide presence rosters and
/// subscriber counts, cached events, and the cluster-wide signed-in users with their local watchers.
///
/// Shared by every event loop and the cluster bus, so it sits behind a lock; it changes on
/// subscribe, unsubscribe, sign-in, the end of a signed-in connection and bus state messages, never
/// per delivered frame, and the lock covers
/// dictionary updates and the hand-off of what they imply (`style.md` §3).
final class ChannelDirectory: Sendable {
    private let state: NIOLockedValueBox<ChannelDirectoryState>

    init(limits: ChannelDirectoryState.Limits = .init()) {
        state = NIOLockedValueBox(ChannelDirectoryState(limits: limits))
    }

    func withState<T>(_ body: (inout ChannelDirectoryState) throws -> T) rethrows -> T {
        try state.withLockedValue(body)
    }
}

/// What a subscription changed, for the caller to announce.
struct SubscribeOutcome {
    /// The presence limits refused the subscription (4100); nothing changed.
    var refused: PusherError?
    /// Member events and bus announcements.
    var changes = DirectoryChanges()
    /// The socket was not subscribed before: the channel's count changed.
    var countChanged = false
    /// The `subscription_succeeded` data (`{}` or the presence object).
    var succeededData: ByteBuffer
    /// The cached event for cache channels (`nil`: cache miss).
    var cachedFrame: OutboundFrame?
}

/// What a sign-in changed, and the state of its watchlist (`protocol.md` §13.4).
struct SignInOutcome {
    var changes = DirectoryChanges()
    /// Watched ids with no signed-in socket anywhere, in watchlist order.
    var offline: [String] = []
    /// Watched ids signed in somewhere, this socket's own included.
    var online: [String] = []
}

/// What an unsubscription changed.
struct UnsubscribeOutcome {
    var wasSubscribed = false
    var changes = DirectoryChanges()
}

/// A cached last event of a cache channel (`protocol.md` §8).
struct CacheEntry {
    var frame: OutboundFrame
    var storedAt: NIODeadline
    /// The write's number, for least-recently-written eviction.
    var write: Int
}
