import NIOCore
import NIOPosix
import ReverbRedis

/// A loopback TCP server that answers each RESP command with whatever `respond` returns (raw
/// RESP text; `nil` means stay silent), for behaviour a real Redis cannot be made to show.
final class FakeRedisServer: Sendable {
    let channel: any Channel
    let commands = Collector<[String]>()

    var port: Int { channel.localAddress?.port ?? 0 }

    init(respond: @escaping @Sendable ([String]) -> String?) async throws {
        let commands = self.commands
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(
                        FakeRedisHandler(commands: commands, respond: respond)
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    /// The server answers at once, so the set-up timeout only matters when a test is broken: it is
    /// long, because a busy CI machine once kept two set-ups past the default 5 s. A test of the
    /// timeout sets its own.
    var configuration: RedisConnectionConfiguration {
        RedisConnectionConfiguration(endpoint: .tcp(host: "127.0.0.1", port: port), connectTimeout: .seconds(30))
    }

    func close() async {
        try? await channel.close()
    }
}

/// Parses commands with `HiredisReader` (a command is a RESP array of bulk strings) and writes replies.
private final class FakeRedisHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let reader = HiredisReader()
    private let commands: Collector<[String]>
    private let respond: @Sendable ([String]) -> String?

    init(commands: Collector<[String]>, respond: @escaping @Sendable ([String]) -> String?) {
        self.commands = commands
        self.respond = respond
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try reader.feed(unwrapInboundIn(data))
            while case .array(let elements?) = try reader.nextReply() {
                let command = elements.map { $0.string ?? "" }
                commands.append(command)
                if let reply = respond(command) {
                    context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: reply)), promise: nil)
                }
            }
        } catch {
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension FakeRedisHandler: Sendable {}
