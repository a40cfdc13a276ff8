import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOWebSocket
import Testing

@testable import Reverb

/// Counts the flushes that reach the socket end of a pipeline.
private final class FlushCounter: ChannelOutboundHandler, Sendable {
    typealias OutboundIn = Any
    let count = NIOLockedValueBox(0)

    func flush(context: ChannelHandlerContext) {
        count.withLockedValue { $0 += 1 }
        context.flush()
    }
}

/// A subscriber connection on an `EmbeddedChannel`, driven through the real handler.
private struct Subscriber {
    let channel: EmbeddedChannel
    let handler: WebSocketConnectionHandler
    let flushes: FlushCounter

    init(node: Node, loop: EmbeddedEventLoop) throws {
        channel = EmbeddedChannel(loop: loop)
        flushes = FlushCounter()
        handler = WebSocketConnectionHandler(
            node: node, app: node.app(key: "key"), origin: nil, logger: Logger(label: "test"))
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(flushes)
        try pipeline.addHandler(WebSocketFrameEncoder())
        try pipeline.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        _ = try received()  // connection_established
    }

    var socketID: String { handler.socketID }

    func subscribe(_ channel: String) throws {
        handler.handleMessage(
            ByteBuffer(string: #"{"event":"pusher:subscribe","data":{"channel":"\#(channel)"}}"#), isText: true,
            now: self.channel.eventLoop.now)
        handler.flushPending()
        let succeeded = try received()
        #expect(
            succeeded == [#"{"event":"pusher_internal:subscription_succeeded","data":"{}","channel":"\#(channel)"}"#])
    }

    /// The Pusher JSON of every text frame written since the last call.
    func received() throws -> [String] {
        try receivedWrites().flatMap { $0 }
    }

    /// The same, grouped by the write that carried them.
    func receivedWrites() throws -> [[String]] {
        var writes: [[String]] = []
        while var bytes = try channel.readOutbound(as: ByteBuffer.self) {
            var texts: [String] = []
            while bytes.readableBytes >= 2 {
                let second = bytes.getInteger(at: bytes.readerIndex + 1, as: UInt8.self)!
                var header = 2
                var length = Int(second & 0x7F)
                if length == 126 {
                    length = Int(bytes.getInteger(at: bytes.readerIndex + 2, as: UInt16.self)!)
                    header = 4
                }
                bytes.moveReaderIndex(forwardBy: header)
                texts.append(bytes.readString(length: length)!)
            }
            writes.append(texts)
        }
        return writes
    }
}

@Suite("Fan-out engine")
struct FanoutTests {
    let loop = EmbeddedEventLoop()
    let node: Node

    init() throws {
        let configuration = ReverbConfiguration(apps: [Application(id: "1", key: "key", secret: "secret")])
        node = try Node(configuration: configuration, eventLoopGroup: loop, logger: Logger(label: "test"))
    }

    var app: AppContext { node.app(key: "key")! }

    /// Moves the loop's virtual time past the inbox's coalescing delay, so the drains run.
    func drain() {
        loop.advanceTime(by: ShardInbox.coalescingDelay)
    }

    func publish(_ data: String, to channels: [String], except socketID: String? = nil) {
        node.pubSub.publish(.http(name: "e", data: data, channels: channels, except: socketID), app: app)
    }

    @Test("frames reach each subscriber in publish order, a burst in one flush per connection")
    func orderAndOneFlush() throws {
        let first = try Subscriber(node: node, loop: loop)
        let second = try Subscriber(node: node, loop: loop)
        try first.subscribe("a")
        try second.subscribe("a")
        try first.subscribe("b")
        let flushesBefore = (first.flushes.count.withLockedValue { $0 }, second.flushes.count.withLockedValue { $0 })
        for index in 0..<3 {
            publish("\(index)", to: ["a"])
            publish("b\(index)", to: ["b"])
        }
        drain()
        #expect(
            try first.received() == [
                #"{"event":"e","data":"0","channel":"a"}"#, #"{"event":"e","data":"b0","channel":"b"}"#,
                #"{"event":"e","data":"1","channel":"a"}"#, #"{"event":"e","data":"b1","channel":"b"}"#,
                #"{"event":"e","data":"2","channel":"a"}"#, #"{"event":"e","data":"b2","channel":"b"}"#,
            ])
        #expect(try second.received().map { $0.contains(#""channel":"a""#) } == [true, true, true])
        #expect(first.flushes.count.withLockedValue { $0 } == flushesBefore.0 + 1)
        #expect(second.flushes.count.withLockedValue { $0 } == flushesBefore.1 + 1)
    }

    @Test("a run of frames to one channel is joined into one write, with per-frame rules kept for the rest")
    func joinedRun() throws {
        let early = try Subscriber(node: node, loop: loop)
        let sender = try Subscriber(node: node, loop: loop)
        try early.subscribe("a")
        try sender.subscribe("a")
        publish("1", to: ["a"])
        let late = try Subscriber(node: node, loop: loop)
        try late.subscribe("a")
        publish("2", to: ["a"], except: sender.socketID)
        publish("3", to: ["a"])
        drain()
        func frame(_ data: String) -> String { #"{"event":"e","data":"\#(data)","channel":"a"}"# }
        // One write holding the three frames for the subscriber eligible for all of them; frame
        // by frame for the excluded sender and the late joiner.
        #expect(try early.receivedWrites() == [[frame("1"), frame("2"), frame("3")]])
        #expect(try sender.receivedWrites() == [[frame("1")], [frame("3")]])
        #expect(try late.receivedWrites() == [[frame("2")], [frame("3")]])
    }

    @Test("the excluded socket_id gets nothing; the others get the same bytes")
    func senderExclusion() throws {
        let sender = try Subscriber(node: node, loop: loop)
        let other = try Subscriber(node: node, loop: loop)
        try sender.subscribe("a")
        try other.subscribe("a")
        publish("x", to: ["a"], except: sender.socketID)
        drain()
        #expect(try sender.received().isEmpty)
        #expect(try other.received() == [#"{"event":"e","data":"x","channel":"a"}"#])
    }

    @Test("a subscription recorded after a broadcast was numbered never receives it, however late the drain")
    func joinedAtOrdering() throws {
        let early = try Subscriber(node: node, loop: loop)
        try early.subscribe("a")
        publish("before", to: ["a"])
        let late = try Subscriber(node: node, loop: loop)
        try late.subscribe("a")
        publish("after", to: ["a"])
        drain()
        #expect(try early.received().count == 2)
        #expect(try late.received() == [#"{"event":"e","data":"after","channel":"a"}"#])
    }

    @Test("a loop without subscribers of a channel is not woken, and its backlog is not charged")
    func interestOnly() throws {
        let subscriber = try Subscriber(node: node, loop: loop)
        try subscriber.subscribe("a")
        publish("x", to: ["nobody-here"])
        #expect(node.fanout.backlog.count == 0)
        publish("y", to: ["a"])
        #expect(node.fanout.backlog.count == 1)
        drain()
        #expect(node.fanout.backlog.count == 0)
        #expect(try subscriber.received() == [#"{"event":"e","data":"y","channel":"a"}"#])
        subscriber.handler.unsubscribe(channel: "a", app: app)
        publish("z", to: ["a"])
        #expect(node.fanout.backlog.count == 0)
    }

    @Test("back-pressure: over the high-water mark publishers wait, below the low one they resume")
    func backlogWaiters() {
        let backlog = FanoutBacklog(highWaterMark: 10, lowWaterMark: 5)
        backlog.add(11)
        #expect(backlog.isOverloaded)
        let resumed = NIOLockedValueBox(0)
        backlog.whenDrained(on: loop) { resumed.withLockedValue { $0 += 1 } }
        loop.run()
        #expect(resumed.withLockedValue { $0 } == 0)
        backlog.remove(4)
        loop.run()
        #expect(resumed.withLockedValue { $0 } == 0)
        backlog.remove(3)
        loop.run()
        #expect(resumed.withLockedValue { $0 } == 1)
        backlog.whenDrained(on: loop) { resumed.withLockedValue { $0 += 1 } }
        loop.run()
        #expect(resumed.withLockedValue { $0 } == 2)
    }
}
