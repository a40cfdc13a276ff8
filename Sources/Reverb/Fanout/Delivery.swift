/// A frame on its way to the subscribers of one channel on one event loop.
struct Delivery: Sendable {
    var key: ChannelKey
    var frame: OutboundFrame
    /// The socket that must not receive it (the HTTP `socket_id`, or a whisper's sender).
    var exceptSocketID: String?
    /// When it was published (`Fanout.nextSequence()`): only subscriptions made before that
    /// receive it, however late the loop drains it.
    var sequence: UInt64
}

/// A channel of one app: what subscriber lists and interest are keyed by.
struct ChannelKey: Hashable, Sendable {
    var appID: String
    var channel: String
}
