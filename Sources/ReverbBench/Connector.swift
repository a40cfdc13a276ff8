import Foundation
import NIOCore
import NIOPosix

/// Which server the subscribers talk to.
enum SubscriberEndpoint: Sendable {
    case reverb(BenchTarget, BenchApp)
    case redis(BenchTarget)

    var target: BenchTarget {
        switch self {
        case .reverb(let target, _), .redis(let target): target
        }
    }
}

/// Opens subscriber and publisher connections.
enum Connector {
    /// Opens `count` subscribed connections, at most `concurrency` handshakes at a time, and returns
    /// them once every subscription is confirmed.
    ///
    /// - Parameters:
    ///   - flag: the option naming the server, for error messages.
    ///   - sourceAddresses: when above 1, connection `i` binds to `127.0.0.(1 + i % sourceAddresses)`.
    ///   - channel: the channel connection `i` subscribes to.
    static func subscribe(
        count: Int, endpoint: SubscriberEndpoint, flag: String, stats: DeliveryStats, group: any EventLoopGroup,
        concurrency: Int = 256, sourceAddresses: Int = 1, channel: @escaping @Sendable (Int) -> String
    ) async throws -> [any Channel] {
        let address = try endpoint.target.socketAddress(flag: flag)
        let request: ByteBuffer? =
            if case .reverb(let target, let app) = endpoint {
                WebSocketSubscriberHandler.upgradeRequest(target: target, appKey: app.key)
            } else { nil }
        var channels: [any Channel] = []
        channels.reserveCapacity(count)
        do {
            try await withThrowingTaskGroup(of: (any Channel).self) { tasks in
                var next = 0
                func add() {
                    let index = next
                    next += 1
                    tasks.addTask {
                        try await connectOne(
                            index: index, address: address, endpoint: endpoint, request: request,
                            channelName: channel(index), stats: stats, group: group, sourceAddresses: sourceAddresses)
                    }
                }
                while next < min(concurrency, count) { add() }
                while let channel = try await tasks.next() {
                    channels.append(channel)
                    if next < count { add() }
                }
            }
        } catch {
            await close(channels)
            throw BenchError("cannot subscribe through \(flag) \(endpoint.target): \(describe(error))")
        }
        return channels
    }

    private static func connectOne(
        index: Int, address: SocketAddress, endpoint: SubscriberEndpoint, request: ByteBuffer?, channelName: String,
        stats: DeliveryStats, group: any EventLoopGroup, sourceAddresses: Int
    ) async throws -> any Channel {
        let loop = group.next()
        let ready = loop.makePromise(of: Void.self)
        let subscribeFrame = WebSocketSubscriberHandler.subscribeFrame(channel: channelName)
        var bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let recorder = stats.recorder(for: channel.eventLoop)
                    let handler: any ChannelHandler =
                        if let request {
                            WebSocketSubscriberHandler(
                                request: request, subscribeFrame: subscribeFrame, stats: stats, recorder: recorder,
                                ready: ready)
                        } else {
                            RedisSubscriberHandler(channel: channelName, stats: stats, recorder: recorder, ready: ready)
                        }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        if sourceAddresses > 1 {
            bootstrap = bootstrap.bind(
                to: try SocketAddress(ipAddress: "127.0.0.\(1 + index % sourceAddresses)", port: 0))
        }
        let channel: any Channel
        do {
            channel = try await bootstrap.connect(to: address).get()
        } catch {
            ready.fail(error)
            throw error
        }
        let timeout = loop.scheduleTask(in: .seconds(20)) {
            ready.fail(BenchError("no subscription confirmation within 20 s"))
        }
        defer { timeout.cancel() }
        do {
            try await ready.futureResult.get()
        } catch {
            channel.close(promise: nil)
            throw error
        }
        return channel
    }

    /// Opens `count` publishing connections on `driver`'s loop and registers their handlers with it.
    static func publishers<Driver: PublishResponseReceiver>(
        count: Int, target: BenchTarget, flag: String, kind: PublisherHandler.ResponseKind,
        driver: NIOLoopBound<Driver>
    ) async throws -> [any Channel] {
        let address = try target.socketAddress(flag: flag)
        var channels: [any Channel] = []
        for index in 0..<count {
            do {
                channels.append(
                    try await publisher(index: index, address: address, kind: kind, driver: driver).get())
            } catch {
                await close(channels)
                throw BenchError("cannot connect to \(flag) \(target): \(describe(error))")
            }
        }
        return channels
    }

    /// Opens publishing connection `index` on `driver`'s loop and registers its handler with it.
    static func publisher<Driver: PublishResponseReceiver>(
        index: Int, address: SocketAddress, kind: PublisherHandler.ResponseKind, driver: NIOLoopBound<Driver>
    ) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: driver.eventLoop)
            .connectTimeout(.seconds(10))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = PublisherHandler(kind: kind, driver: driver.value, index: index)
                    try channel.pipeline.syncOperations.addHandler(handler)
                    driver.value.publisherAdded(handler)
                }
            }
            .connect(to: address)
    }

    static func close(_ channels: [any Channel]) async {
        for channel in channels { channel.close(promise: nil) }
        for channel in channels { try? await channel.closeFuture.get() }
    }

    /// A short reason for a connection failure (`Connection refused`).
    static func describe(_ error: any Error) -> String {
        if let connect = error as? NIOConnectionError, let first = connect.connectionErrors.first {
            if let io = first.error as? IOError { return String(cString: strerror(io.errnoCode)) }
            return "\(first.error)"
        }
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        if let bench = error as? BenchError { return bench.description }
        if case ChannelError.connectTimeout = error as? ChannelError ?? .ioOnClosedChannel {
            return "connection timed out"
        }
        return "\(error)"
    }
}
