import NIOCore

/// Client side of a raw TCP connection: parses one HTTP response head, then either WebSocket frames
/// (after a 101) or body bytes, and hands everything to a `ClientInbox` in arrival order.
final class RawClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private enum Mode {
        case head
        case frames
        case body
    }

    private let inbox: ClientInbox
    private var mode = Mode.head
    private var buffer = ByteBuffer()

    init(inbox: ClientInbox) {
        self.inbox = inbox
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        buffer.writeBuffer(&chunk)
        process()
    }

    func channelInactive(context: ChannelHandlerContext) {
        process()
        inbox.push(.eof)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A reset by the server ends the connection like a close does.
        context.close(promise: nil)
    }

    private func process() {
        while true {
            switch mode {
            case .head:
                guard let response = parseHead() else { return }
                inbox.push(.response(response))
                mode = response.status == 101 ? .frames : .body
            case .body:
                guard buffer.readableBytes > 0, let bytes = buffer.readBytes(length: buffer.readableBytes) else {
                    return
                }
                inbox.push(.body(bytes))
            case .frames:
                guard let frame = parseFrame() else { return }
                inbox.push(.frame(frame))
            }
        }
    }

    private func parseHead() -> RawHTTPResponse? {
        let view = buffer.readableBytesView
        let terminator: [UInt8] = Array("\r\n\r\n".utf8)
        guard view.count >= 4 else { return nil }
        var end: Int?
        var index = view.startIndex
        while index + 4 <= view.endIndex {
            if view[index..<index + 4].elementsEqual(terminator) {
                end = index
                break
            }
            index += 1
        }
        guard let end else { return nil }
        let headLength = end - view.startIndex
        let text = buffer.readString(length: headLength) ?? ""
        buffer.moveReaderIndex(forwardBy: 4)
        let lines = text.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let statusLine = lines.first ?? ""
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        let status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
        var headers: [RawHTTPResponse.Field] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = String(line[..<colon])
            let value = line[line.index(after: colon)...].drop { $0 == " " }
            headers.append(.init(name: name, value: String(value)))
        }
        return RawHTTPResponse(statusLine: statusLine, status: status, headers: headers)
    }

    private func parseFrame() -> WebSocketFrame? {
        let view = buffer.readableBytesView
        guard view.count >= 2 else { return nil }
        let start = view.startIndex
        let b0 = view[start]
        let b1 = view[start + 1]
        let masked = b1 & 0x80 != 0
        var length = Int(b1 & 0x7F)
        var offset = 2
        if length == 126 {
            guard view.count >= 4 else { return nil }
            length = Int(view[start + 2]) << 8 | Int(view[start + 3])
            offset = 4
        } else if length == 127 {
            guard view.count >= 10 else { return nil }
            length = 0
            for i in 0..<8 { length = length << 8 | Int(view[start + 2 + i]) }
            offset = 10
        }
        var mask: [UInt8] = []
        if masked {
            guard view.count >= offset + 4 else { return nil }
            mask = Array(view[(start + offset)..<(start + offset + 4)])
            offset += 4
        }
        guard view.count >= offset + length else { return nil }
        var payload = Array(view[(start + offset)..<(start + offset + length)])
        if masked {
            for i in payload.indices { payload[i] ^= mask[i % 4] }
        }
        buffer.moveReaderIndex(forwardBy: offset + length)
        buffer.discardReadBytes()
        return WebSocketFrame(
            fin: b0 & 0x80 != 0, rsv: (b0 >> 4) & 0x7, opcode: b0 & 0x0F, masked: masked, payload: payload)
    }
}

@available(*, unavailable)
extension RawClientHandler: Sendable {}
