import AsyncHTTPClient
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Delivers every app's webhooks (`http-api.md` §8.1): one task asks each app's queue for the POSTs
/// due, sends them through one async-http-client (keep-alive, https verified against the system
/// trust store) on a thread of its own, and sleeps until the next deadline or a new event. A slow or
/// dead receiver only delays its own URL: WebSocket and HTTP API traffic never waits for it.
///
/// A `Service` in the server's group: runs until graceful shutdown or cancellation, which abandons
/// what is still queued.
final class WebhookSender: Service, Sendable {
    /// A POST without a complete response within this time failed.
    static let attemptTimeout = TimeAmount.seconds(5)
    /// How often at most drops are logged per app.
    static let dropWarningInterval = TimeAmount.seconds(10)
    /// The client's own event loop: receivers never run on the server's loops.
    static let clientThread: any EventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    let apps: [AppWebhooks]
    let wake: WakeSignal
    private let logger: Logger
    private let userAgent = "swift-reverb/\(ReverbVersion.current)"
    private let lastDropWarning = NIOLockedValueBox([String: (at: NIODeadline, dropped: Int)]())

    init(apps: [AppWebhooks], wake: WakeSignal, logger: Logger) {
        self.apps = apps
        self.wake = wake
        self.logger = logger
    }

    func run() async throws {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5), read: Self.attemptTimeout)
        configuration.redirectConfiguration = .disallow
        configuration.httpVersion = .http1Only
        let client = HTTPClient(eventLoopGroup: Self.clientThread, configuration: configuration)
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                while !Task.isCancelled {
                    let now = NIODeadline.now()
                    var next: NIODeadline?
                    for app in self.apps {
                        let (attempts, deadline) = app.poll(now: now)
                        for attempt in attempts {
                            group.addTask { await self.send(attempt, app: app, client: client) }
                        }
                        if let deadline { next = min(next ?? deadline, deadline) }
                        self.warnAboutDrops(app, now: now)
                    }
                    await self.sleep(until: next)
                }
            }
        }
        try? await client.shutdown()
    }

    /// Waits for a signal, or until `deadline`.
    private func sleep(until deadline: NIODeadline?) async {
        let wake = self.wake
        let timer = deadline.map { deadline in
            Task {
                let nanoseconds = max(0, (deadline - .now()).nanoseconds)
                try? await Task.sleep(for: .nanoseconds(nanoseconds))
                if !Task.isCancelled { wake.signal() }
            }
        }
        await wake.wait()
        timer?.cancel()
    }

    private func send(_ attempt: WebhookQueue.Attempt, app: AppWebhooks, client: HTTPClient) async {
        let webhook = app.webhooks[attempt.endpoint]
        let body = WebhookEvent.body(attempt.events, timeMilliseconds: Int64(ClusterNode.wallClockMilliseconds()))
        var request = HTTPClientRequest(url: webhook.url)
        request.method = .POST
        for (name, value) in webhook.headers.sorted(by: { $0.key < $1.key }) {
            let lowered = name.lowercased()
            if lowered == "x-pusher-key" || lowered == "x-pusher-signature" || lowered == "content-length" { continue }
            request.headers.replaceOrAdd(name: name, value: value)
        }
        if !request.headers.contains(name: "Content-Type") {
            request.headers.add(name: "Content-Type", value: "application/json")
        }
        if !request.headers.contains(name: "User-Agent") { request.headers.add(name: "User-Agent", value: userAgent) }
        request.headers.replaceOrAdd(name: "X-Pusher-Key", value: app.key)
        request.headers.replaceOrAdd(
            name: "X-Pusher-Signature", value: WebhookEvent.signature(of: body, secret: app.secret))
        request.body = .bytes(body)
        var success = false
        var failure = ""
        do {
            let response = try await client.execute(request, timeout: Self.attemptTimeout)
            // Read to the end so that the connection goes back to the pool.
            _ = try await response.body.collect(upTo: 1024 * 1024)
            success = (200..<300).contains(response.status.code)
            if !success { failure = "status \(response.status.code)" }
        } catch {
            failure = "\(error)"
        }
        if success {
            app.sentCount.wrappingAdd(1, ordering: .relaxed)
        } else {
            app.failedCount.wrappingAdd(1, ordering: .relaxed)
        }
        let outcome = app.finished(endpoint: attempt.endpoint, success: success, now: .now())
        switch outcome {
        case .delivered:
            logger.debug(
                "Webhook delivered", metadata: ["app_id": "\(app.appID)", "events": "\(attempt.events.count)"])
        case .willRetry:
            logger.debug(
                "Webhook failed; retrying",
                metadata: ["app_id": "\(app.appID)", "url": "\(webhook.url)", "error": "\(failure)"])
        case .gaveUp(let count):
            logger.warning(
                "Webhook failed for 5 minutes; events dropped",
                metadata: [
                    "app_id": "\(app.appID)", "url": "\(webhook.url)", "dropped": "\(count)", "error": "\(failure)",
                ])
        }
        wake.signal()
    }

    private func warnAboutDrops(_ app: AppWebhooks, now: NIODeadline) {
        let dropped = app.droppedCount
        let warn = lastDropWarning.withLockedValue { warnings -> Int? in
            let last = warnings[app.appID]
            guard dropped > (last?.dropped ?? 0) else { return nil }
            if let last, now - last.at < Self.dropWarningInterval { return nil }
            warnings[app.appID] = (now, dropped)
            return dropped - (last?.dropped ?? 0)
        }
        if let warn {
            logger.warning("Webhook events dropped", metadata: ["app_id": "\(app.appID)", "dropped": "\(warn)"])
        }
    }
}
