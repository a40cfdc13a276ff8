import NIOCore

/// A command travelling down the pipeline to `RedisChannelHandler`; it crosses threads, so it holds
/// only Sendable values.
struct RedisRequest: Sendable {
    enum Command: Sendable {
        case text([String])
        case binary([ByteBuffer])
        case publish(channel: String, payload: ByteBuffer)
    }

    var command: Command
    /// How many replies answer the command: one, or one per channel for `SUBSCRIBE`.
    var expectedReplies: Int
    /// Completed with the reply (an error reply included), or failed if the connection closes first.
    /// `nil` for fire-and-forget publishes, whose error replies the handler logs.
    var promise: EventLoopPromise<RESPValue>?

    init(_ command: Command, expectedReplies: Int = 1, promise: EventLoopPromise<RESPValue>?) {
        self.command = command
        self.expectedReplies = expectedReplies
        self.promise = promise
    }

    /// For `SUNSUBSCRIBE`, the channels whose confirmations answer it.
    var unsubscribing: [String]? {
        guard case .text(let arguments) = command, arguments.first == "SUNSUBSCRIBE" else { return nil }
        return Array(arguments.dropFirst())
    }

    /// Roughly the encoded size, so one allocation usually suffices.
    var estimatedSize: Int {
        switch command {
        case .text(let arguments): arguments.reduce(16) { $0 + $1.utf8.count + 16 }
        case .binary(let arguments): arguments.reduce(16) { $0 + $1.readableBytes + 16 }
        case .publish(let channel, let payload): 48 + channel.utf8.count + payload.readableBytes
        }
    }

    func encode(into buffer: inout ByteBuffer) {
        switch command {
        case .text(let arguments): RESPCommandEncoder.encode(arguments, into: &buffer)
        case .binary(let arguments): RESPCommandEncoder.encode(arguments, into: &buffer)
        case .publish(let channel, let payload):
            RESPCommandEncoder.encodePublish(channel: channel, payload: payload, into: &buffer)
        }
    }
}
