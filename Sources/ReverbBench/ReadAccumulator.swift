import NIOCore

/// The bytes of a partial message kept between reads, so a handler parses each read in place and
/// copies only when a message straddles two reads.
struct ReadAccumulator {
    private var pending: ByteBuffer?

    /// Runs `process` over what is readable now; whatever it leaves unread waits for the next read.
    mutating func feed(_ incoming: ByteBuffer, _ process: (inout ByteBuffer) -> Void) {
        var buffer = incoming
        if var earlier = pending.take() {
            earlier.writeBuffer(&buffer)
            buffer = earlier
        }
        process(&buffer)
        if buffer.readableBytes > 0 { pending = buffer }
    }
}
