import NIOCore

/// The send time carried inside an event's `data` string: `ts:<20 digits ns>:<10 digits seq>:xxxx…`.
///
/// Plain ASCII without quotes or backslashes, so it travels unescaped in the HTTP body, the Pusher
/// frame and the Redis message alike, and the receiver finds it by scanning for `ts:` in the raw
/// bytes without decoding JSON or allocating.
enum PayloadTimestamp {
    static let marker: [UInt8] = Array("ts:".utf8)
    static let timestampDigits = 20
    static let sequenceDigits = 10
    /// `ts:` + timestamp + `:` + sequence + `:`.
    static let headerLength = 3 + timestampDigits + 1 + sequenceDigits + 1

    /// The current monotonic time in nanoseconds (CLOCK_MONOTONIC, shared by every thread).
    static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

    /// Writes the data string for `timestamp` and `sequence`, padded with `x` to `size` bytes
    /// (at least the header).
    static func write(timestamp: UInt64, sequence: UInt64, size: Int, into buffer: inout ByteBuffer) {
        buffer.writeBytes(marker)
        writeDigits(timestamp, count: timestampDigits, into: &buffer)
        buffer.writeInteger(UInt8(ascii: ":"))
        writeDigits(sequence % 10_000_000_000, count: sequenceDigits, into: &buffer)
        buffer.writeInteger(UInt8(ascii: ":"))
        let padding = size - headerLength
        if padding > 0 { buffer.writeRepeatingByte(UInt8(ascii: "x"), count: padding) }
    }

    /// The data string as a `String` (tests and one-off use).
    static func string(timestamp: UInt64, sequence: UInt64, size: Int) -> String {
        var buffer = ByteBuffer()
        write(timestamp: timestamp, sequence: sequence, size: size, into: &buffer)
        return String(buffer: buffer)
    }

    private static func writeDigits(_ value: UInt64, count: Int, into buffer: inout ByteBuffer) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { pointer in
            var remaining = value
            for index in stride(from: count - 1, through: 0, by: -1) {
                pointer[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: remaining % 10)
                remaining /= 10
            }
            return count
        }
    }

    /// Finds the first timestamp header in `bytes` and returns its timestamp and sequence.
    static func decode(_ bytes: UnsafeRawBufferPointer) -> (timestamp: UInt64, sequence: UInt64)? {
        guard bytes.count >= headerLength else { return nil }
        var index = 0
        let last = bytes.count - headerLength
        while index <= last {
            if bytes[index] == UInt8(ascii: "t") && bytes[index + 1] == UInt8(ascii: "s")
                && bytes[index + 2] == UInt8(ascii: ":")
            {
                let start = index + 3
                if let timestamp = digits(bytes, from: start, count: timestampDigits),
                    bytes[start + timestampDigits] == UInt8(ascii: ":"),
                    let sequence = digits(bytes, from: start + timestampDigits + 1, count: sequenceDigits)
                {
                    return (timestamp, sequence)
                }
            }
            index += 1
        }
        return nil
    }

    /// Decodes the first timestamp header in the readable bytes of `buffer`.
    static func decode(_ buffer: ByteBuffer) -> (timestamp: UInt64, sequence: UInt64)? {
        buffer.withUnsafeReadableBytes { decode($0) }
    }

    private static func digits(_ bytes: UnsafeRawBufferPointer, from start: Int, count: Int) -> UInt64? {
        var value: UInt64 = 0
        for index in start..<(start + count) {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value &* 10 &+ UInt64(digit)
        }
        return value
    }
}

extension UnsafeRawBufferPointer {
    /// Whether `needle` occurs in these bytes (a plain scan; frames here are short).
    func containsBytes(_ needle: StaticString) -> Bool {
        let length = needle.utf8CodeUnitCount
        guard length > 0, count >= length else { return false }
        return needle.withUTF8Buffer { pattern in
            let first = pattern[0]
            var index = 0
            let last = count - length
            outer: while index <= last {
                if self[index] == first {
                    for offset in 1..<length where self[index + offset] != pattern[offset] {
                        index += 1
                        continue outer
                    }
                    return true
                }
                index += 1
            }
            return false
        }
    }
}
