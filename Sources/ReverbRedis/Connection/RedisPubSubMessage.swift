public import NIOCore

/// A `message` (or `pmessage`) push received on a subscribed connection.
public struct RedisPubSubMessage: Sendable, Equatable {
    /// The channel the message was published to.
    public var channel: String
    /// The published bytes, exactly as given to `PUBLISH`.
    public var payload: ByteBuffer

    /// A message published on `channel`.
    public init(channel: String, payload: ByteBuffer) {
        self.channel = channel
        self.payload = payload
    }
}
