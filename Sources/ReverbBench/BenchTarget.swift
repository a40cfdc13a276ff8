import Foundation
import NIOCore

/// A server the bench talks to: `http://host:port[/prefix]` (Reverb) or `redis://host:port` (Redis).
struct BenchTarget: Sendable, CustomStringConvertible {
    var scheme: String
    var host: String
    var port: Int
    /// Reverb's route prefix, "" or "/path".
    var prefix: String

    /// Parses `value`, naming `flag` in the error.
    init(parsing value: String, flag: String, schemes: [String]) throws {
        guard let components = URLComponents(string: value), let scheme = components.scheme?.lowercased(),
            schemes.contains(scheme), let host = components.host, !host.isEmpty
        else {
            throw BenchError("\(flag): \"\(value)\" is not a URL of the form \(schemes[0])://HOST:PORT.")
        }
        let defaultPort = scheme == "redis" ? 6379 : (scheme == "https" || scheme == "wss" ? 443 : 80)
        let port = components.port ?? defaultPort
        guard (1...65_535).contains(port) else { throw BenchError("\(flag): port \(port) is out of range.") }
        if scheme == "https" || scheme == "wss" {
            throw BenchError("\(flag): TLS is not supported by reverb-bench; use http:// on loopback.")
        }
        self.scheme = scheme
        self.host = host
        self.port = port
        var path = components.path
        while path.hasSuffix("/") { path.removeLast() }
        self.prefix = path
    }

    var description: String { "\(scheme)://\(host):\(port)\(prefix)" }

    func socketAddress(flag: String) throws -> SocketAddress {
        do {
            return try SocketAddress.makeAddressResolvingHost(host, port: port)
        } catch {
            throw BenchError("\(flag): cannot resolve \(host): \(error).")
        }
    }
}

/// The app the bench signs for and connects to.
struct BenchApp: Sendable {
    var id: String
    var key: String
    var secret: String
}

/// A fatal, user-facing error: printed as is, exit code 1.
struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
