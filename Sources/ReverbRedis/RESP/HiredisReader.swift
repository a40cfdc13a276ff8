internal import CHiredis
public import NIOCore

/// Parses RESP2 replies with hiredis' reader, the only part of hiredis this library uses.
///
/// Feed bytes as they arrive, then pull replies until `nextReply()` returns `nil`. After a
/// `RESPError` the reader is failed for good: every later call throws the same error, and the
/// connection that fed it must be closed.
///
/// hiredis 0.14 allocates an array's element table as soon as it reads the `*N` header, before any
/// element arrives, and has no limit of its own (1.x added `maxelements`): `*1111111111` would ask
/// for 8.9 GB. The reader therefore wraps hiredis' `createArray` and refuses headers above
/// `maximumArrayElements`, which fails the reader with a message naming the length.
public final class HiredisReader {
    /// The longest array accepted. The longest this library asks for is an `XREAD COUNT 1000`
    /// reply; 1,048,576 elements (an 8 MiB table) leaves room for any reply Redis sends us.
    public static let maximumArrayElements = 1 << 20

    private let reader: UnsafeMutablePointer<redisReader>
    /// hiredis' own reply functions with `createArray` replaced; `reader.pointee.fn` points here.
    private let functions: UnsafeMutablePointer<redisReplyObjectFunctions>
    /// Reached from the C callback through `reader.pointee.privdata` (hiredis copies it into every
    /// read task): the original functions and the refused length, if any.
    private let context: UnsafeMutablePointer<ArrayGuard>
    private let allocator = ByteBufferAllocator()
    private var failure: RESPError?

    /// A reader with an empty buffer.
    public init() {
        guard let reader = redisReaderCreate(), let original = reader.pointee.fn else {
            fatalError("hiredis could not allocate a reply reader (out of memory)")
        }
        self.reader = reader
        context = .allocate(capacity: 1)
        context.initialize(to: ArrayGuard(original: original.pointee, refusedLength: nil))
        functions = .allocate(capacity: 1)
        functions.initialize(to: original.pointee)
        functions.pointee.createArray = { task, elements in
            guard let task, let context = task.pointee.privdata?.assumingMemoryBound(to: ArrayGuard.self)
            else { return nil }
            if Int(elements) > HiredisReader.maximumArrayElements {
                context.pointee.refusedLength = Int(elements)
                return nil  // hiredis fails the reader (out of memory); `fail()` says why
            }
            return context.pointee.original.createArray(task, elements)
        }
        reader.pointee.fn = functions
        reader.pointee.privdata = UnsafeMutableRawPointer(context)
    }

    deinit {
        redisReaderFree(reader)
        functions.deinitialize(count: 1)
        functions.deallocate()
        context.deinitialize(count: 1)
        context.deallocate()
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
        if let length = context.pointee.refusedLength {
            let error = RESPError(
                message: "array of \(length) elements exceeds the limit of \(Self.maximumArrayElements)")
            failure = error
            throw error
        }
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

/// What the `createArray` wrapper needs, behind the reader's `privdata`.
private struct ArrayGuard {
    var original: redisReplyObjectFunctions
    var refusedLength: Int?
}
