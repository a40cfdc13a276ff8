public import NIOCore

/// Compact JSON output straight into a `ByteBuffer`: no intermediate strings, `/` and non-ASCII
/// written as they are, only `"`, `\` and control characters escaped.
public enum JSONWriter {
    /// Writes `value` compactly.
    public static func write(_ value: JSONValue, into buffer: inout ByteBuffer) {
        switch value {
        case .null: buffer.writeStaticString("null")
        case .bool(let b): buffer.writeStaticString(b ? "true" : "false")
        case .number(let text): buffer.writeString(text)
        case .string(let s): writeString(s, into: &buffer)
        case .array(let elements):
            buffer.writeInteger(UInt8(ascii: "["))
            for (i, element) in elements.enumerated() {
                if i > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                write(element, into: &buffer)
            }
            buffer.writeInteger(UInt8(ascii: "]"))
        case .object(let object):
            buffer.writeInteger(UInt8(ascii: "{"))
            for (i, entry) in object.entries.enumerated() {
                if i > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                writeString(entry.key, into: &buffer)
                buffer.writeInteger(UInt8(ascii: ":"))
                write(entry.value, into: &buffer)
            }
            buffer.writeInteger(UInt8(ascii: "}"))
        }
    }

    /// Writes `string` as a JSON string literal.
    public static func writeString(_ string: String, into buffer: inout ByteBuffer) {
        var string = string
        string.withUTF8 { writeString(utf8: $0, into: &buffer) }
    }

    /// Writes UTF-8 bytes as a JSON string literal.
    public static func writeString(utf8: UnsafeBufferPointer<UInt8>, into buffer: inout ByteBuffer) {
        buffer.reserveCapacity(minimumWritableBytes: utf8.count + 2)
        buffer.writeInteger(UInt8(ascii: "\""))
        var runStart = 0
        for i in 0..<utf8.count {
            let byte = utf8[i]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            if runStart < i { buffer.writeBytes(UnsafeBufferPointer(rebasing: utf8[runStart..<i])) }
            runStart = i + 1
            switch byte {
            case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
            case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
            case 0x0A: buffer.writeStaticString("\\n")
            case 0x0D: buffer.writeStaticString("\\r")
            case 0x09: buffer.writeStaticString("\\t")
            case 0x08: buffer.writeStaticString("\\b")
            case 0x0C: buffer.writeStaticString("\\f")
            default:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                buffer.writeStaticString("\\u00")
                buffer.writeInteger(hex[Int(byte >> 4)])
                buffer.writeInteger(hex[Int(byte & 0x0F)])
            }
        }
        if runStart < utf8.count { buffer.writeBytes(UnsafeBufferPointer(rebasing: utf8[runStart..<utf8.count])) }
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    /// Writes the readable bytes of `json` (itself a JSON text) as a JSON string: the Pusher
    /// protocol's double encoding of `data`.
    public static func writeString(bytesOf json: ByteBuffer, into buffer: inout ByteBuffer) {
        json.withUnsafeReadableBytes { raw in
            writeString(utf8: raw.bindMemory(to: UInt8.self), into: &buffer)
        }
    }

    /// `value` as compact JSON text.
    public static func string(_ value: JSONValue) -> String {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        write(value, into: &buffer)
        return String(buffer: buffer)
    }
}
