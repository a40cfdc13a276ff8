import NIOCore
import NIOHTTP1

/// The metrics listener of its own (`metrics.port`, `http-api.md` §8.2): `GET`/`HEAD /metrics` and
/// nothing else (`404 Not found.`). One request at a time (NIO's pipelining handler holds the rest);
/// keep-alive as the request asks.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let node: Node
    private var head: HTTPRequestHead?

    init(node: Node) {
        self.node = node
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let future: EventLoopFuture<HTTPResponse>
        if path != "/metrics" {
            future = context.eventLoop.makeSucceededFuture(.notFound)
        } else if head.method != .GET && head.method != .HEAD {
            future = context.eventLoop.makeSucceededFuture(.methodNotAllowed(allow: ["GET", "HEAD"]))
        } else {
            future = node.metricsResponse(headers: head.headers, on: context.eventLoop)
        }
        let keepAlive = head.isKeepAlive
        let withBody = head.method != .HEAD
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        future.whenComplete { result in
            let (handler, context) = loopBound.value
            let response = (try? result.get()) ?? .internalError
            context.write(
                handler.wrapOutboundOut(.head(response.head(version: head.version, keepAlive: keepAlive))),
                promise: nil)
            if withBody && response.body.readableBytes > 0 {
                context.write(handler.wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
            }
            let written = context.writeAndFlush(handler.wrapOutboundOut(.end(nil))).assumeIsolated()
            if !keepAlive { written.whenComplete { _ in context.close(promise: nil) } }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension MetricsHTTPHandler: Sendable {}
