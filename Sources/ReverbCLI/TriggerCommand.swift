import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Reverb

/// `reverb events:trigger CHANNEL EVENT [DATA]`: sign and send one event (`config.md` §6.4).
struct TriggerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events:trigger",
        abstract: "Sign and send an event to a server through the HTTP API.",
        version: "swift-reverb \(ReverbCommand.version)"
    )

    @Argument(help: "Channel name, or several separated by commas.")
    var channel: String

    @Argument(help: "Event name.")
    var event: String

    @Argument(help: "The event's data, sent verbatim; must be JSON. '-' reads it from stdin.")
    var data: String = "{}"

    @Option(name: .customLong("app-id"), help: "Which app signs (default: the only configured app).")
    var appID: String?

    @Option(help: "Target host (default: the app's options.host, else the server host).")
    var host: String?

    @Option(help: "Target port (default: the app's options.port with options.host, else the server port).")
    var port: Int?

    @Option(help: "http or https.")
    var scheme: String?

    @Option(name: .customLong("socket-id"), help: "socket_id to exclude from delivery.")
    var socketID: String?

    @Option(help: "info attributes to return, e.g. subscription_count,user_count.")
    var info: String?

    @Option(help: "Connect and response timeout in seconds.")
    var timeout: Double = 10

    @Option(help: "Configuration file.")
    var config: String?

    func run() async throws {
        let configuration = try CommandSupport.loadConfiguration(ConfigurationFlags(configFile: config))
        let app = try selectApp(configuration)
        var payload = data
        if payload == "-" {
            payload = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        }
        guard (try? JSONParser.parse(payload)) != nil else {
            CommandSupport.fail("DATA: \"\(payload)\" is not valid JSON.", exitCode: 64)
        }
        if let scheme, scheme != "http" && scheme != "https" {
            CommandSupport.fail("--scheme: \"\(scheme)\" must be http or https.", exitCode: 64)
        }
        let target = resolveTarget(configuration: configuration, app: app)
        let body = makeBody(data: payload)
        let path = configuration.server.routePrefix + "/apps/\(app.id)/events"
        let query = RequestSigner(key: app.key, secret: app.secret).signedQuery(
            method: "POST", path: path, body: body, timestamp: Int64(Date().timeIntervalSince1970))
        let url = "\(target.scheme)://\(Self.urlHost(target.host)):\(target.port)\(path)?\(query)"
        let (status, answer) = await Self.post(
            url: url, body: body, timeout: .nanoseconds(Int64(timeout * 1_000_000_000)),
            failure: "Could not reach \(target.scheme)://\(target.host):\(target.port)")
        guard (200..<300).contains(status) else {
            CommandSupport.fail("HTTP \(status): \(answer)", exitCode: 1)
        }
        CommandSupport.printOutput(answer)
    }

    /// One POST through async-http-client (the project's one outbound HTTP client). Certificates are
    /// not verified: the target is the operator's own server, often with a development certificate.
    private static func post(
        url: String, body: String, timeout: TimeAmount, failure: String
    ) async -> (status: Int, body: String) {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.certificateVerification = .none
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.timeout = .init(connect: timeout, read: timeout)
        configuration.redirectConfiguration = .disallow
        let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: configuration)
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Connection", value: "close")
        request.body = .bytes(ByteBuffer(string: body))
        let result: Result<(Int, String), any Error>
        do {
            let response = try await client.execute(request, timeout: timeout)
            let bytes = try await response.body.collect(upTo: 16 * 1024 * 1024)
            result = .success((Int(response.status.code), String(buffer: bytes)))
        } catch {
            result = .failure(error)
        }
        try? await client.shutdown()
        switch result {
        case .success(let answer): return answer
        case .failure(let error): CommandSupport.fail("\(failure): \(error).", exitCode: 1)
        }
    }

    /// An IPv6 address in brackets, as a URL needs it.
    private static func urlHost(_ host: String) -> String {
        host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
    }

    private func selectApp(_ configuration: ReverbConfiguration) throws -> Application {
        let ids = configuration.apps.map(\.id).joined(separator: ", ")
        if let appID {
            guard let app = configuration.apps.first(where: { $0.id == appID }) else {
                CommandSupport.fail(
                    "--app-id: \"\(appID)\" matches no configured app (configured: \(ids)).", exitCode: 64)
            }
            return app
        }
        guard configuration.apps.count == 1, let app = configuration.apps.first else {
            CommandSupport.fail("Several apps are configured (\(ids)): pass --app-id.", exitCode: 64)
        }
        return app
    }

    private func resolveTarget(configuration: ReverbConfiguration, app: Application) -> (
        scheme: String, host: String, port: Int
    ) {
        let server = configuration.server
        let appHost = app.options.host
        var targetHost = host ?? appHost ?? server.host
        if host == nil && appHost == nil {
            if targetHost == "0.0.0.0" { targetHost = "127.0.0.1" }
            if targetHost == "::" { targetHost = "::1" }
        }
        let targetPort = port ?? (appHost != nil ? app.options.port : server.port)
        let targetScheme = scheme ?? (appHost != nil ? app.options.scheme : (server.tls != nil ? "https" : "http"))
        return (targetScheme, targetHost, targetPort)
    }

    private func makeBody(data: String) -> String {
        let channels = channel.split(separator: ",", omittingEmptySubsequences: true).map(String.init)
        var object = JSONObject([("name", .string(event)), ("data", .string(data))])
        if channels.count == 1 {
            object["channel"] = .string(channels[0])
        } else {
            object["channels"] = .array(channels.map { .string($0) })
        }
        if let socketID { object["socket_id"] = .string(socketID) }
        if let info { object["info"] = .string(info) }
        return JSONWriter.string(.object(object))
    }
}
