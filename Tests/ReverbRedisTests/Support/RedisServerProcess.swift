import Foundation
import NIOCore
import NIOPosix
import ReverbRedis

/// A `redis-server` from `PATH` on a free loopback port with its own temporary directory, for tests
/// that need a password, ACL users, TLS, a unix socket or a restart. Stop it with `stop()`.
final class RedisServerProcess {
    let port: Int
    let directory: URL
    private let baseArguments: [String]
    private var arguments: [String]
    private var process: Process?

    /// Starts a server with `arguments` added to a throw-away configuration (no persistence) on a
    /// free loopback port (`--tls-port` with `tls`).
    static func start(_ arguments: [String] = [], tls: Bool = false) async throws -> RedisServerProcess {
        var lastError: (any Error)?
        for _ in 0..<5 {
            let server = try RedisServerProcess(port: await freePort(), arguments: arguments, tls: tls)
            do {
                try await server.start()
                return server
            } catch {
                server.stop()
                lastError = error  // most likely the port was taken meanwhile: try another
            }
        }
        throw lastError ?? TestFailure("redis-server did not start")
    }

    private init(port: Int, arguments: [String], tls: Bool) throws {
        self.port = port
        self.directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("reverb-redis-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let listen = tls ? ["--port", "0", "--tls-port", String(port)] : ["--port", String(port)]
        self.arguments = arguments
        self.baseArguments =
            listen + [
                "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory.path,
                "--logfile", directory.appendingPathComponent("redis.log").path,
            ]
    }

    /// Starts (or restarts) the server on the same port and waits until it accepts connections;
    /// `arguments` replaces the extra arguments given so far.
    func start(arguments: [String]? = nil) async throws {
        if let arguments { self.arguments = arguments }
        let process = Process()
        process.executableURL = try Self.executable("redis-server")
        process.arguments = baseArguments + self.arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try? FileManager.default.removeItem(at: directory.appendingPathComponent("redis.log"))
        try process.run()
        self.process = process
        let port = self.port
        try await eventually("redis-server listening on port \(port)") {
            guard process.isRunning else {
                throw TestFailure("redis-server exited: \(self.log)")
            }
            // Another test's server may hold a port picked at the same time: only our own
            // server's "ready" line proves the listener is ours.
            guard self.log.contains("Ready to accept connections") else { return false }
            return await Self.accepts(port: port)
        }
    }

    /// Kills the server at once (SIGKILL) and waits until it is gone.
    func kill() async throws {
        guard let process else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        try await eventually("redis-server exited") { !process.isRunning }
        self.process = nil
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the server: connections stay open but unanswered.
    func suspend(_ suspended: Bool) {
        guard let process else { return }
        Foundation.kill(process.processIdentifier, suspended ? SIGSTOP : SIGCONT)
    }

    /// Kills the server and removes its directory.
    func stop() {
        if let process, process.isRunning {
            Foundation.kill(process.processIdentifier, SIGCONT)
            Foundation.kill(process.processIdentifier, SIGKILL)
        }
        process = nil
        try? FileManager.default.removeItem(at: directory)
    }

    var log: String {
        (try? String(contentsOf: directory.appendingPathComponent("redis.log"), encoding: .utf8)) ?? "(no log)"
    }

    func configuration(
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        tls: RedisConnectionConfiguration.TLS? = nil
    ) -> RedisConnectionConfiguration {
        RedisConnectionConfiguration(
            endpoint: .tcp(host: "127.0.0.1", port: port),
            username: username,
            password: password,
            database: database,
            connectTimeout: .seconds(5),
            tls: tls
        )
    }

    static func executable(_ name: String) throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw TestFailure("\(name) is not on PATH")
    }

    /// A loopback port that was free a moment ago.
    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }

    private static func accepts(port: Int) async -> Bool {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "127.0.0.1", port: port).get()
            try? await channel.close()
            return true
        } catch {
            return false
        }
    }
}
