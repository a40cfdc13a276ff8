internal import CHiredis
public import NIOCore

/// Parses RESP2 replies with hiredis' reader, the only part of hiredis this library uses.
///
/// Feed bytes as they arrive, then pull replies until `nextReply()` returns `nil`. After a
/// `RESPError` the reader is failed for good: every later call throws the same error, and the
/// connection that fed it must be closed.
public final class HiredisReader {
    private let reader: UnsafeMutablePointer<redisReader>
    private let allocator = ByteBufferAllocator()
    private var failure: RESPError?

    /// A reader with an empty buffer.
    public init() {
        guard let reader = redisReaderCreate() else {
            fatalError("hiredis could not allocate a reply reader (out of memory)")
        }
        self.reader = reader
    }

    deinit {
        redisReaderFree(reader)
    }

    /// Hands bytes to the parser, which buffers them until a reply is complete.
    public func feed(_ bytes: ByteBuffer) throws(RESPError) {
        if let failure { throw failure }
        let status = bytes.withUnsafeReadableBytes { raw in
            redisReaderFeed(reader, raw.baseAddress?.assumingMemoryBound(to: CChar.self), raw.count)
        }
        if status != REDIS_OK { try fail() }
    }

    /// The next complete reply, or `nil` when more bytes are needed.
    public func nextReply() throws(RESPError) -> RESPValue? {
        if let failure { throw failure }
        var reply: UnsafeMutableRawPointer?
        if redisReaderGetReply(reader, &reply) != REDIS_OK { try fail() }
        guard let reply else { return nil }
        let root = reply.assumingMemoryBound(to: redisReply.self)
        defer { freeReplyObject(reply) }
        return value(of: root)
    }

    private func fail() throws(RESPError) -> Never {
        var errstr = reader.pointee.errstr
        let message = withUnsafeBytes(of: &errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        let error = RESPError(message: message.isEmpty ? "unknown protocol error" : message)
        failure = error
        throw error
    }

    private func value(of reply: UnsafeMutablePointer<redisReply>) -> RESPValue {
        let node = reply.pointee
        switch node.type {
        case REDIS_REPLY_STRING:
            return .bulkString(bytes(node.str, node.len))
        case REDIS_REPLY_STATUS:
            return .simpleString(String(buffer: bytes(node.str, node.len)))
        case REDIS_REPLY_ERROR:
            return .error(String(buffer: bytes(node.str, node.len)))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(node.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(node.elements)
            for index in 0..<node.elements {
                if let child = node.element[index] { elements.append(value(of: child)) }
            }
            return .array(elements)
        default:  // REDIS_REPLY_NIL: `$-1` and `*-1` look the same to hiredis
            return .bulkString(nil)
        }
    }

    private func bytes(_ pointer: UnsafeMutablePointer<CChar>?, _ length: Int) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: length)
        if let pointer, length > 0 {
            buffer.writeBytes(UnsafeRawBufferPointer(start: pointer, count: length))
        }
        return buffer
    }
}

@available(*, unavailable)
extension HiredisReader: Sendable {}
