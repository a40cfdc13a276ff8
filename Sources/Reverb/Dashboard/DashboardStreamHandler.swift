import NIOCore
import NIOHTTP1

/// The dashboard page's own live stream (Server-Sent Events), in place of `HTTPServerHandler` on
/// a connection whose request was `GET {prefix}/dashboard/api/stream` with a session.
///
/// Not a Pusher connection: it holds no socket id and no app connection slot, subscribes to
/// nothing, and counts in no app's figures. Every second it sends an `overview`; every
/// `debugInterval` what the app's console queue holds (`debug`), and how many events that bounded
/// queue dropped (`dropped`). While the client does not read, nothing is written: overviews are
/// skipped and debug events wait in the queue, which drops (and counts) past its bound.
final class DashboardStreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let debugInterval = TimeAmount.milliseconds(250)
    /// Debug ticks per overview.
    static let ticksPerOverview = 4

    private let dashboard: Dashboard
    private let grant: Dashboard.StreamGrant
    private let watcher: DebugWatcher?
    private let version: HTTPVersion
    private var timer: RepeatedTask?
    private var ticks = 0
    private var started = false

    init(dashboard: Dashboard, grant: Dashboard.StreamGrant, version: HTTPVersion) {
        self.dashboard = dashboard
        self.grant = grant
        self.version = version
        self.watcher = grant.app == nil ? nil : DebugWatcher()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        dashboard.register(
            Dashboard.Stream(channel: context.channel, appID: grant.app?.id), id: ObjectIdentifier(self))
        if let watcher, let app = grant.app { app.debug.add(watcher) }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/event-stream; charset=utf-8")
        headers.add(name: "Cache-Control", value: "no-cache, private")
        headers.add(name: "X-Accel-Buffering", value: "no")
        for (name, value) in Dashboard.securityHeaders { headers.add(name: name, value: value) }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: version, status: .ok, headers: headers))), promise: nil)
        var first = context.channel.allocator.buffer(capacity: 32 * 1024)
        first.writeStaticString("retry: 2000\n\n")
        writeEvent("overview", dashboard.overview(app: grant.app, session: grant.session, history: true), into: &first)
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(first))), promise: nil)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleRepeatedTask(
            initialDelay: Self.debugInterval, delay: Self.debugInterval
        ) { _ in
            let (handler, context) = loopBound.value
            handler.tick(context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stop()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    /// Anything the client sends after its request is ignored: the response never ends.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func stop() {
        timer?.cancel()
        timer = nil
        if let watcher, let app = grant.app { app.debug.remove(watcher) }
        dashboard.unregister(ObjectIdentifier(self))
    }

    private func tick(context: ChannelHandlerContext) {
        guard context.channel.isActive else { return stop() }
        ticks += 1
        // A client that does not read gets nothing more until it does.
        guard context.channel.isWritable else { return }
        // Its session may expire while it watches: then the stream ends.
        if grant.session.expiresAt <= HTTPAPI.systemClock() {
            context.close(promise: nil)
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: 1024)
        if let watcher {
            let (events, dropped) = watcher.drain()
            if !events.isEmpty {
                buffer.writeStaticString("event: debug\ndata: [")
                for (index, event) in events.enumerated() {
                    if index > 0 { buffer.writeStaticString(",") }
                    buffer.writeString(event)
                }
                buffer.writeStaticString("]\n\n")
            }
            if dropped > 0 {
                writeEvent(
                    "dropped",
                    .object(
                        JSONObject([
                            ("dropped", .number(String(dropped))),
                            ("total", .number(String(watcher.droppedTotal))),
                        ])), into: &buffer)
            }
        }
        if ticks % Self.ticksPerOverview == 0 {
            writeEvent(
                "overview", dashboard.overview(app: grant.app, session: grant.session, history: false), into: &buffer)
        }
        guard buffer.readableBytes > 0 else { return }
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    }

    /// `event: NAME`, then the value as one `data:` line (JSON has no raw newlines).
    private func writeEvent(_ name: StaticString, _ value: JSONValue, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("event: ")
        buffer.writeStaticString(name)
        buffer.writeStaticString("\ndata: ")
        JSONWriter.write(value, into: &buffer)
        buffer.writeStaticString("\n\n")
    }
}

@available(*, unavailable)
extension DashboardStreamHandler: Sendable {}
