import Foundation
import NIOCore
import NIOPosix
import Reverb
import Synchronization

/// What a `SequenceClientHandler` reports to. Every call comes on the handler's event loop.
protocol SequenceClientOwner: AnyObject {
    /// The subscription was confirmed (`subscribedAt` is set).
    func clientSubscribed(_ client: SequenceClientHandler)
    /// An event frame carrying `sequence` arrived at `now`.
    func clientReceived(_ client: SequenceClientHandler, sequence: UInt64, now: UInt64)
    /// A `client-*` event (whisper) from another member arrived.
    func clientReceivedWhisper(_ client: SequenceClientHandler)
    /// The connection is gone (or never came up); called once, last.
    func clientFinished(_ client: SequenceClientHandler)
}

/// A Pusher client for the long-running scenarios: subscribes to one public or presence channel
/// (signing the presence auth with the socket id it is given), records the sequence number of every
/// event it receives, can whisper, unsubscribe and close, and, as a slow client, stops reading after
/// subscribing to see what the server does about it.
final class SequenceClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Role {
        /// Reads everything; its deliveries are audited.
        case member
        /// Stops reading once subscribed, for `pause`, then reads again; closes the connection itself
        /// if the server has not closed it `patience` after that.
        case slow(pause: TimeAmount, patience: TimeAmount)
    }

    /// Who ended the connection.
    enum Ending: Equatable {
        case open
        /// This side: a leave, the end of the run or a timeout.
        case client
        /// The server sent a Close frame with `code` first.
        case serverClose(code: UInt16)
        /// The server closed or reset TCP without a Close frame.
        case serverDrop
    }

    private enum State {
        case handshaking
        case connected
        case subscribed
        case closed
    }

    let channelName: String
    /// The channel's index in the scenario's list of audited channels.
    let trackedChannel: Int
    /// The `user_id` for a presence channel, nil for a public one.
    let presenceUser: String?
    let role: Role
    private let request: ByteBuffer
    private let app: BenchApp
    private let owner: any SequenceClientOwner
    private let stats: DeliveryStats
    private let recorder: LoopLatencyRecorder
    private var state = State.handshaking
    private var reads = ReadAccumulator()
    private var context: ChannelHandlerContext?
    private var finished = false

    private(set) var sequences = SequenceTracker()
    /// When `subscription_succeeded` was read (monotonic ns).
    private(set) var subscribedAt: UInt64?
    /// When this side began to leave, or when the server ended the connection.
    private(set) var leftAt: UInt64?
    private(set) var ending = Ending.open
    /// A slow client that read again and waited its patience out without the server closing it.
    private(set) var outlastedPatience = false
    /// Whether the pipeline ever held this handler (false: the connect itself failed).
    private(set) var wasAdded = false
    /// The owner's bookkeeping: positions in its lists, -1 when absent.
    var slot = -1
    var presenceSlot = -1
    /// Counted towards the owner's target number of clients (until it begins to leave).
    var isCounted = false
    /// Not yet subscribed.
    var isConnecting = false

    var isSlow: Bool {
        if case .slow = role { true } else { false }
    }

    init(
        request: ByteBuffer, app: BenchApp, channelName: String, trackedChannel: Int, presenceUser: String?,
        role: Role, owner: any SequenceClientOwner, stats: DeliveryStats, recorder: LoopLatencyRecorder
    ) {
        self.request = request
        self.app = app
        self.channelName = channelName
        self.trackedChannel = trackedChannel
        self.presenceUser = presenceUser
        self.role = role
        self.owner = owner
        self.stats = stats
        self.recorder = recorder
    }

    /// Connects `handler` to `address` on `loop`.
    static func connect(_ handler: SequenceClientHandler, to address: SocketAddress, on loop: any EventLoop)
        -> EventLoopFuture<any Channel>
    {
        let bound = NIOLoopBound(handler, eventLoop: loop)
        return ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(bound.value) }
            }
            .connect(to: address)
    }

    // MARK: Actions (on the handler's loop)

    /// Begins to leave: `pusher:unsubscribe`, then 200 ms later a Close handshake; or just closes TCP.
    func leave(unsubscribeFirst: Bool, now: UInt64) {
        guard let context, ending == .open else { return }
        ending = .client
        leftAt = now
        guard unsubscribeFirst else {
            context.close(promise: nil)
            return
        }
        context.writeAndFlush(
            wrapOutboundOut(
                WebSocketClientFrames.textFrame(
                    #"{"event":"pusher:unsubscribe","data":{"channel":"\#(channelName)"}}"#)),
            promise: nil)
        context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(200)) { self.sendClose(code: 1000) }
    }

    /// Closes TCP now (the end of the run).
    func closeNow(now: UInt64) {
        if ending == .open {
            ending = .client
            leftAt = now
        }
        context?.close(promise: nil)
    }

    /// Sends `client-x` with `number` to the presence channel.
    func whisper(number: Int) {
        guard let context, state == .subscribed, ending == .open else { return }
        context.writeAndFlush(
            wrapOutboundOut(
                WebSocketClientFrames.textFrame(
                    #"{"event":"client-x","channel":"\#(channelName)","data":{"n":\#(number)}}"#)),
            promise: nil)
    }

    private func sendClose(code: UInt16) {
        guard let context else { return }
        context.writeAndFlush(wrapOutboundOut(WebSocketClientFrames.closeFrame(code: code)), promise: nil)
        // The server answers and closes TCP; close it ourselves if it does not.
        context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(2)) { self.context?.close(promise: nil) }
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        wasAdded = true
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        finish()
    }

    /// Reports the end to the owner, once.
    func finish() {
        guard !finished else { return }
        finished = true
        state = .closed
        owner.clientFinished(self)
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
        context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(20)) {
            if self.subscribedAt == nil { self.closeNow(now: PayloadTimestamp.now()) }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reads.feed(unwrapInboundIn(data)) { process(context: context, buffer: &$0) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        recorder.publishDeliveries(to: stats)
        context.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if ending == .open {
            ending = .serverDrop
            leftAt = PayloadTimestamp.now()
        }
        state = .closed
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if ending == .open {
            ending = .serverDrop
            leftAt = PayloadTimestamp.now()
        }
        context.close(promise: nil)
    }

    private func process(context: ChannelHandlerContext, buffer: inout ByteBuffer) {
        if state == .handshaking {
            switch WebSocketClientFrames.readHandshake(&buffer) {
            case .incomplete:
                return
            case .refused:
                stats.errors.add(1, ordering: .relaxed)
                closeNow(now: PayloadTimestamp.now())
                return
            case .switched:
                state = .connected
            }
        }
        let now = PayloadTimestamp.now()
        WebSocketClientFrames.readFrames(&buffer) { opcode, payload, length in
            handleFrame(context: context, opcode: opcode, buffer: payload, length: length, now: now)
        }
    }

    private func handleFrame(
        context: ChannelHandlerContext, opcode: UInt8, buffer: ByteBuffer, length: Int, now: UInt64
    ) {
        switch opcode {
        case 0x1, 0x0:
            buffer.withUnsafeReadableBytes { all in
                let payload = UnsafeRawBufferPointer(rebasing: all[0..<length])
                if let decoded = PayloadTimestamp.decode(payload) {
                    guard !isSlow else { return }
                    recorder.unflushedDeliveries += 1
                    recorder.histogram.record(nanoseconds: now &- decoded.timestamp)
                    sequences.record(decoded.sequence)
                    owner.clientReceived(self, sequence: decoded.sequence, now: now)
                } else if payload.containsBytes("\"client-x\"") {
                    owner.clientReceivedWhisper(self)
                } else if payload.containsBytes("pusher:ping") {
                    context.write(wrapOutboundOut(WebSocketClientFrames.pusherPong), promise: nil)
                } else if payload.containsBytes("connection_established") {
                    subscribe(context: context, established: payload)
                } else if payload.containsBytes("subscription_succeeded") {
                    subscribed(context: context, now: now)
                } else if payload.containsBytes("pusher:error") {
                    stats.errors.add(1, ordering: .relaxed)
                }
            }
        case 0x8:
            if ending == .open {
                var code: UInt16 = 1005
                if length >= 2 { code = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self)! }
                ending = .serverClose(code: code)
                leftAt = now
                sendClose(code: code)
            } else {
                context.close(promise: nil)
            }
        case 0x9:
            let ping = buffer.getSlice(at: buffer.readerIndex, length: length)!
            context.write(wrapOutboundOut(WebSocketClientFrames.pong(answering: ping)), promise: nil)
        default:
            break
        }
    }

    private func subscribe(context: ChannelHandlerContext, established payload: UnsafeRawBufferPointer) {
        guard state == .connected else { return }
        let frame: String
        if let user = presenceUser {
            guard let socketID = Self.socketID(in: payload) else {
                stats.errors.add(1, ordering: .relaxed)
                closeNow(now: PayloadTimestamp.now())
                return
            }
            let channelData = #"{"user_id":"\#(user)","user_info":{"name":"soak"}}"#
            let auth = ChannelAuthorization.auth(
                key: app.key, secret: app.secret, socketID: socketID, channel: channelName, channelData: channelData)
            let escaped = String(channelData.flatMap { $0 == "\"" ? ["\\", "\""] : [$0] })
            frame =
                #"{"event":"pusher:subscribe","data":{"auth":"\#(auth)","channel":"\#(channelName)","#
                + #""channel_data":"\#(escaped)"}}"#
        } else {
            frame = #"{"event":"pusher:subscribe","data":{"auth":"","channel":"\#(channelName)"}}"#
        }
        context.write(wrapOutboundOut(WebSocketClientFrames.textFrame(frame)), promise: nil)
    }

    private func subscribed(context: ChannelHandlerContext, now: UInt64) {
        guard state == .connected else { return }
        state = .subscribed
        subscribedAt = now
        stats.subscribed.add(1, ordering: .relaxed)
        owner.clientSubscribed(self)
        guard case .slow(let pause, let patience) = role else { return }
        try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: false)
        context.eventLoop.assumeIsolated().scheduleTask(in: pause) {
            guard let context = self.context, self.ending == .open else { return }
            try? context.channel.syncOptions?.setOption(ChannelOptions.autoRead, value: true)
            context.read()
            context.eventLoop.assumeIsolated().scheduleTask(in: patience) {
                guard self.ending == .open else { return }
                self.outlastedPatience = true
                self.closeNow(now: PayloadTimestamp.now())
            }
        }
    }

    /// The `socket_id` inside a `pusher:connection_established` frame (its `data` is a JSON string,
    /// so the id sits between escaped quotes).
    static func socketID(in payload: UnsafeRawBufferPointer) -> String? {
        let text = String(decoding: payload, as: UTF8.self)
        guard let key = text.range(of: "socket_id") else { return nil }
        let rest = text[key.upperBound...].drop { !$0.isNumber }
        let id = rest.prefix { $0.isNumber || $0 == "." }
        return id.isEmpty ? nil : String(id)
    }
}

@available(*, unavailable)
extension SequenceClientHandler: Sendable {}
