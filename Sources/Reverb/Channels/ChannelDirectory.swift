import NIOConcurrencyHelpers
import NIOCore

/// One app's channel bookkeeping on this node: subscriptions, presence members and cached events.
///
/// Shared by every event loop, so it sits behind a lock; it changes on subscribe and unsubscribe,
/// never per delivered frame, and the lock covers dictionary updates only (`style.md` §3).
final class ChannelDirectory: Sendable {
    private let state = NIOLockedValueBox(ChannelDirectoryState())

    func withState<T>(_ body: (inout ChannelDirectoryState) throws -> T) rethrows -> T {
        try state.withLockedValue(body)
    }
}

/// What a subscription changed, for the caller to announce outside the lock.
struct SubscribeOutcome {
    /// The subscriber's user joined the channel: send `member_added` to the others.
    var addedMember: PresenceMember?
    /// A re-subscribe replaced a user whose last connection this was: send `member_removed`.
    var removedUserID: JSONValue?
    /// The `subscription_succeeded` data (`{}` or the presence object).
    var succeededData: ByteBuffer
    /// The cached event for cache channels (`nil`: cache miss).
    var cachedFrame: OutboundFrame?
}

/// A cached last event of a cache channel (`protocol.md` §8).
struct CacheEntry {
    var frame: OutboundFrame
    var storedAt: NIODeadline
}
