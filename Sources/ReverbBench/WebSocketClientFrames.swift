import NIOCore

/// The client side of RFC 6455 as the bench speaks it: the upgrade answer and server frames parsed in
/// place from the read buffer, and final, masked client frames written with a zero key.
enum WebSocketClientFrames {
    enum Handshake {
        /// The response head has not fully arrived.
        case incomplete
        /// `101 Switching Protocols`: the head was consumed, frames follow.
        case switched
        /// Any other status; the status line.
        case refused(String)
    }

    /// Reads the upgrade response head off `buffer`.
    static func readHandshake(_ buffer: inout ByteBuffer) -> Handshake {
        guard let end = buffer.readableBytesView.firstRange(of: [13, 10, 13, 10]) else { return .incomplete }
        let headLength = end.upperBound - buffer.readerIndex
        let switching = buffer.withUnsafeReadableBytes { bytes in
            bytes.count >= 12 && UnsafeRawBufferPointer(rebasing: bytes[9..<12]).elementsEqual("101".utf8)
        }
        guard switching else {
            let line = buffer.readableBytesView.prefix { $0 != 13 }
            return .refused(String(decoding: line, as: UTF8.self))
        }
        buffer.moveReaderIndex(forwardBy: headLength)
        return .switched
    }

    /// Calls `body` for each complete frame in `buffer` with its opcode, the buffer (reader index at
    /// the frame's payload) and the payload length; a partial frame is left unread for the next read.
    @inline(__always)
    static func readFrames(
        _ buffer: inout ByteBuffer, _ body: (_ opcode: UInt8, _ payload: ByteBuffer, _ length: Int) -> Void
    ) {
        while buffer.readableBytes >= 2 {
            let start = buffer.readerIndex
            let first = buffer.getInteger(at: start, as: UInt8.self)!
            let second = buffer.getInteger(at: start + 1, as: UInt8.self)!
            var length = Int(second & 0x7F)
            var headerLength = 2
            if length == 126 {
                guard let extended = buffer.getInteger(at: start + 2, as: UInt16.self) else { return }
                length = Int(extended)
                headerLength = 4
            } else if length == 127 {
                guard let extended = buffer.getInteger(at: start + 2, as: UInt64.self) else { return }
                length = Int(extended)
                headerLength = 10
            }
            if second & 0x80 != 0 { headerLength += 4 }
            guard buffer.readableBytes >= headerLength + length else { return }
            buffer.moveReaderIndex(forwardBy: headerLength)
            body(first & 0x0F, buffer, length)
            buffer.moveReaderIndex(forwardBy: length)
        }
    }

    /// Writes a final, masked client frame. The mask key is zero, which RFC 6455 allows (the key
    /// only has to be present), so the payload bytes go out unchanged.
    static func writeClientFrame(opcode: UInt8, payload: ByteBuffer, into buffer: inout ByteBuffer) {
        buffer.writeInteger(0x80 | opcode)
        let length = payload.readableBytes
        if length < 126 {
            buffer.writeInteger(0x80 | UInt8(length))
        } else if length <= 65_535 {
            buffer.writeInteger(UInt8(0x80 | 126))
            buffer.writeInteger(UInt16(length))
        } else {
            buffer.writeInteger(UInt8(0x80 | 127))
            buffer.writeInteger(UInt64(length))
        }
        buffer.writeInteger(UInt32(0))
        var payload = payload
        buffer.writeBuffer(&payload)
    }

    /// A text frame carrying `text`.
    static func textFrame(_ text: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        writeClientFrame(opcode: 0x1, payload: ByteBuffer(string: text), into: &buffer)
        return buffer
    }

    /// A Close frame with `code` and no reason.
    static func closeFrame(code: UInt16) -> ByteBuffer {
        var payload = ByteBuffer()
        payload.writeInteger(code)
        var buffer = ByteBuffer()
        writeClientFrame(opcode: 0x8, payload: payload, into: &buffer)
        return buffer
    }

    /// The Pong frame answering a Ping with `payload`.
    static func pong(answering payload: ByteBuffer) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(payload.readableBytes + 6)
        writeClientFrame(opcode: 0xA, payload: payload, into: &buffer)
        return buffer
    }

    /// The `pusher:pong` answer to a `pusher:ping`.
    static let pusherPong = textFrame(#"{"event":"pusher:pong","data":"{}"}"#)
}
