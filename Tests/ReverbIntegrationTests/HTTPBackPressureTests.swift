import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

@Suite("HTTP back-pressure (http-api.md §1)")
struct HTTPBackPressureTests {
    static let requestCount = 200_000
    static let requestsPerWrite = 1_000
    /// Enough replies to pass through the server's 64 KiB write buffer many times over.
    static let repliesRead = 20_000
    static let request = "GET /up HTTP/1.1\r\nHost: x\r\n\r\n"

    @Test("a client pipelining 200,000 GET /up without reading stops being read, then gets intact replies")
    func pipelinedWithoutReading() async throws {
        try await withTestServer { server in
            let replies = ReplyCollector()
            // A small send buffer keeps what the client's kernel holds well below the requests sent.
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.socketOption(.so_sndbuf), value: 16 * 1024)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelOption(.autoRead, value: false)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ReplyCollectingHandler(collector: replies))
                    }
                }
                .connect(host: "127.0.0.1", port: server.port)
                .get()
            let rssBefore = residentBytes()
            let writesDone = Atomic<Int>(0)
            let batch = String(repeating: Self.request, count: Self.requestsPerWrite)
            let writes = Self.requestCount / Self.requestsPerWrite
            let writer = Task {
                for _ in 0..<writes {
                    try await channel.writeAndFlush(channel.allocator.buffer(string: batch))
                    writesDone.add(1, ordering: .relaxed)
                }
            }

            // Wait until the writes stall for a second (or all are in): asserting that the server
            // has stopped reading is the one bounded wait here.
            var last = -1
            let deadline = ContinuousClock.now + .seconds(120)
            while ContinuousClock.now < deadline {
                let done = writesDone.load(ordering: .relaxed)
                if done == writes || done == last { break }
                last = done
                try await Task.sleep(for: .seconds(1))
            }
            // Kernel buffers on both sides take some tens of thousands; the server must not take all.
            let accepted = writesDone.load(ordering: .relaxed) * Self.requestsPerWrite
            let rssGrowth = residentBytes() - rssBefore
            #expect(
                accepted <= Self.requestCount / 2,
                "the server kept reading: \(accepted) requests sent, RSS +\(rssGrowth / 1_048_576) MiB")
            #expect(rssGrowth < 50 * 1_048_576, "RSS +\(rssGrowth / 1_048_576) MiB")

            // Another client is served meanwhile.
            let other = try await server.http(RawHTTP.request(method: "GET", target: "/up", port: server.port))
            #expect(other.status == 200 && other.bodyText == #"{"health":"OK"}"#, "\(other)")

            // Reading resumes the server: the replies arrive intact.
            try await channel.setOption(.autoRead, value: true).get()
            let readDeadline = ContinuousClock.now + .seconds(60)
            while replies.counts.good + replies.counts.bad < Self.repliesRead, ContinuousClock.now < readDeadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(replies.counts.good >= Self.repliesRead)
            #expect(replies.counts.bad == 0)
            try await channel.close()
            _ = await writer.result
        }
    }
}

/// The replies one connection received: well-formed `/up` replies, and anything else.
final class ReplyCollector: Sendable {
    private let state = NIOLockedValueBox((good: 0, bad: 0))

    var counts: (good: Int, bad: Int) { state.withLockedValue { $0 } }

    func add(good: Int, bad: Int) {
        state.withLockedValue {
            $0.good += good
            $0.bad += bad
        }
    }
}

/// Splits the stream into `/up` replies, all of one length (the `Date` value has a fixed width).
final class ReplyCollectingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    static let prefix = Array(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\nDate: ".utf8)
    static let suffix = Array(" GMT\r\nCache-Control: no-cache, private\r\n\r\n{\"health\":\"OK\"}".utf8)
    /// Prefix, `Sun, 01 Dec 2026 21:36:21` (25 bytes), suffix.
    static let length = prefix.count + 25 + suffix.count

    private let collector: ReplyCollector
    private var buffer = ByteBuffer()

    init(collector: ReplyCollector) {
        self.collector = collector
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        buffer.writeBuffer(&chunk)
        var good = 0
        var bad = 0
        while buffer.readableBytes >= Self.length {
            let view = buffer.readableBytesView
            let start = view.startIndex
            let intact =
                view[start..<start + Self.prefix.count].elementsEqual(Self.prefix)
                && view[(start + Self.length - Self.suffix.count)..<(start + Self.length)].elementsEqual(Self.suffix)
            if intact { good += 1 } else { bad += 1 }
            buffer.moveReaderIndex(forwardBy: Self.length)
        }
        buffer.discardReadBytes()
        collector.add(good: good, bad: bad)
    }
}

@available(*, unavailable)
extension ReplyCollectingHandler: Sendable {}

/// This process's resident set size (`VmRSS` in /proc/self/status), 0 where there is none.
func residentBytes() -> Int {
    guard let file = fopen("/proc/self/status", "r") else { return 0 }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard text.hasPrefix("VmRSS:") else { continue }
        let digits = text.drop { !$0.isNumber }.prefix { $0.isNumber }
        return (Int(digits) ?? 0) * 1024
    }
    return 0
}
