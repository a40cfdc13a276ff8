public import NIOCore

/// A server-to-client WebSocket text frame, header included, ready to be written to any number of
/// connections: server frames are unmasked, so every recipient gets the same bytes (`style.md` §4.1).
public struct OutboundFrame: Sendable {
    /// Header and payload; the readable bytes are the whole frame.
    public var bytes: ByteBuffer

    /// Room reserved before the payload for the largest header (2 + 8 bytes).
    @usableFromInline static let headerRoom = 10

    /// Builds a frame whose payload `write` produces; the header is filled in afterwards without a copy.
    @inlinable
    public static func build(capacity: Int = 128, _ write: (inout ByteBuffer) -> Void) -> OutboundFrame {
        var buffer = ByteBufferAllocator().buffer(capacity: capacity + headerRoom)
        buffer.moveWriterIndex(forwardBy: headerRoom)
        buffer.moveReaderIndex(forwardBy: headerRoom)
        write(&buffer)
        return OutboundFrame(framing: buffer)
    }

    /// Frames a payload that sits after `headerRoom` spare bytes at the start of its storage.
    @usableFromInline
    init(framing payload: ByteBuffer) {
        var buffer = payload
        let length = buffer.readableBytes
        let headerSize = length < 126 ? 2 : (length <= 0xFFFF ? 4 : 10)
        let start = buffer.readerIndex - headerSize
        buffer.setInteger(UInt8(0x81), at: start)
        switch headerSize {
        case 2:
            buffer.setInteger(UInt8(length), at: start + 1)
        case 4:
            buffer.setInteger(UInt8(126), at: start + 1)
            buffer.setInteger(UInt16(length), at: start + 2)
        default:
            buffer.setInteger(UInt8(127), at: start + 1)
            buffer.setInteger(UInt64(length), at: start + 2)
        }
        buffer.moveReaderIndex(to: start)
        self.bytes = buffer
    }

    /// The JSON text carried by the frame.
    public var payload: ByteBuffer {
        var copy = bytes
        let second = copy.getInteger(at: copy.readerIndex + 1, as: UInt8.self) ?? 0
        let headerSize = second < 126 ? 2 : (second == 126 ? 4 : 10)
        copy.moveReaderIndex(forwardBy: headerSize)
        return copy
    }
}
