import NIOCore

/// What drives publishing connections and hears their answers (`PublishDriver`, `SequencedPublisher`).
/// Every call comes on the receiver's event loop, where its handlers live.
protocol PublishResponseReceiver: AnyObject {
    /// A connection's handler, added to its pipeline and about to connect.
    func publisherAdded(_ handler: PublisherHandler)
    /// One answer, in request order on connection `index`.
    func responseReceived(index: Int, ok: Bool, receivers: Int, latency: UInt64, failure: String?)
    /// Connection `index` closed with `unanswered` requests in flight.
    func connectionClosed(index: Int, unanswered: Int)
}

/// One keep-alive publishing connection: writes requests the driver builds, matches responses to
/// their send times in order (HTTP/1.1 and RESP both answer in order) and reports each to the driver.
final class PublisherHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum ResponseKind {
        case http
        case resp
    }

    private let kind: ResponseKind
    private let driver: any PublishResponseReceiver
    let index: Int
    private var sendTimes = CircularBuffer<UInt64>(initialCapacity: 64)
    private var reads = ReadAccumulator()
    private var context: ChannelHandlerContext?

    init(kind: ResponseKind, driver: any PublishResponseReceiver, index: Int) {
        self.kind = kind
        self.driver = driver
        self.index = index
    }

    var inFlight: Int { sendTimes.count }
    var isOpen: Bool { context != nil }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// Writes `buffer`, which holds `count` requests all stamped `time`.
    func send(_ buffer: ByteBuffer, count: Int, time: UInt64) {
        guard let context else { return }
        for _ in 0..<count { sendTimes.append(time) }
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    /// Closes the connection.
    func close() {
        context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reads.feed(unwrapInboundIn(data)) { process(buffer: &$0) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let lost = sendTimes.count
        sendTimes.removeAll()
        self.context = nil
        driver.connectionClosed(index: index, unanswered: lost)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func process(buffer: inout ByteBuffer) {
        let now = PayloadTimestamp.now()
        while true {
            let parsed = buffer.withUnsafeReadableBytes { bytes -> (length: Int, ok: Bool, receivers: Int)? in
                switch kind {
                case .http: Self.httpResponse(bytes)
                case .resp: Self.respReply(bytes)
                }
            }
            guard let parsed else { return }
            var failure: String?
            if !parsed.ok {
                failure = String(decoding: buffer.readableBytesView.prefix(min(parsed.length, 300)), as: UTF8.self)
            }
            buffer.moveReaderIndex(forwardBy: parsed.length)
            let sent = sendTimes.isEmpty ? now : sendTimes.removeFirst()
            driver.responseReceived(
                index: index, ok: parsed.ok, receivers: parsed.receivers, latency: now &- sent, failure: failure)
        }
    }

    /// A complete HTTP/1.1 response: its length and whether the status is 2xx.
    static func httpResponse(_ bytes: UnsafeRawBufferPointer) -> (length: Int, ok: Bool, receivers: Int)? {
        guard bytes.count >= 16 else { return nil }
        var index = 0
        var headEnd = -1
        while index + 3 < bytes.count {
            if bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
                headEnd = index + 4
                break
            }
            index += 1
        }
        guard headEnd > 0 else { return nil }
        let head = UnsafeRawBufferPointer(rebasing: bytes[0..<headEnd])
        var contentLength = 0
        if let start = Self.find(head, "\r\ncontent-length:") {
            var position = start
            while position < headEnd && (head[position] == 32 || head[position] == 9) { position += 1 }
            while position < headEnd, head[position] >= 48, head[position] <= 57 {
                contentLength = contentLength * 10 + Int(head[position] - 48)
                position += 1
            }
        }
        guard bytes.count >= headEnd + contentLength else { return nil }
        return (headEnd + contentLength, bytes[9] == UInt8(ascii: "2"), 0)
    }

    /// The offset after a case-insensitive match of the lowercase ASCII `needle`.
    private static func find(_ bytes: UnsafeRawBufferPointer, _ needle: StaticString) -> Int? {
        needle.withUTF8Buffer { pattern in
            guard bytes.count >= pattern.count else { return nil }
            outer: for start in 0...(bytes.count - pattern.count) {
                for offset in 0..<pattern.count {
                    var byte = bytes[start + offset]
                    if byte >= 65 && byte <= 90 { byte += 32 }
                    if byte != pattern[offset] { continue outer }
                }
                return start + pattern.count
            }
            return nil
        }
    }

    /// A complete RESP reply to PUBLISH: `:N` (receivers) or an error.
    static func respReply(_ bytes: UnsafeRawBufferPointer) -> (length: Int, ok: Bool, receivers: Int)? {
        guard let end = RESP.valueEnd(bytes, from: 0) else { return nil }
        guard bytes[0] == UInt8(ascii: ":") else { return (end, false, 0) }
        var receivers = 0
        for index in 1..<(end - 2) { receivers = receivers * 10 + Int(bytes[index]) - 48 }
        return (end, true, receivers)
    }
}

@available(*, unavailable)
extension PublisherHandler: Sendable {}
