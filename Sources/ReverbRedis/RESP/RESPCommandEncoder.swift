public import NIOCore

/// Writes Redis commands as RESP2 arrays of bulk strings: `*N\r\n`, then `$len\r\n<bytes>\r\n` per argument.
public enum RESPCommandEncoder {
    /// Appends one command whose arguments are raw bytes (payloads may hold anything, CRLF included).
    public static func encode(_ arguments: [ByteBuffer], into buffer: inout ByteBuffer) {
        writeHeader(count: arguments.count, into: &buffer)
        for argument in arguments {
            writeLength(argument.readableBytes, into: &buffer)
            buffer.writeImmutableBuffer(argument)
            buffer.writeStaticString("\r\n")
        }
    }

    /// Appends one command whose arguments are UTF-8 text.
    public static func encode(_ arguments: [String], into buffer: inout ByteBuffer) {
        writeHeader(count: arguments.count, into: &buffer)
        for argument in arguments {
            writeLength(argument.utf8.count, into: &buffer)
            buffer.writeString(argument)
            buffer.writeStaticString("\r\n")
        }
    }

    /// Appends `PUBLISH <channel> <payload>` without copying the payload into an intermediate array.
    public static func encodePublish(channel: String, payload: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("*3\r\n$7\r\nPUBLISH\r\n")
        writeLength(channel.utf8.count, into: &buffer)
        buffer.writeString(channel)
        buffer.writeStaticString("\r\n")
        writeLength(payload.readableBytes, into: &buffer)
        buffer.writeImmutableBuffer(payload)
        buffer.writeStaticString("\r\n")
    }

    private static func writeHeader(count: Int, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "*"))
        buffer.writeString(String(count))
        buffer.writeStaticString("\r\n")
    }

    private static func writeLength(_ length: Int, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "$"))
        buffer.writeString(String(length))
        buffer.writeStaticString("\r\n")
    }
}
