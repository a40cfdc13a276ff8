import NIOCore

/// A message a Redis Cluster node refused with a redirect, handed back by one shard's publisher so
/// that `RedisClusterPublisher` sends it where the slot map now says.
struct RedisClusterRedirected: Sendable {
    var channel: String
    var payload: ByteBuffer
    var redirect: RedisClusterRedirect
    /// Redirects so far, this one included (bounded: a message redirected too often is dropped).
    var redirects: Int
}

extension RedisConnectionConfiguration.Endpoint {
    /// The TCP host; empty for a unix socket.
    var host: String {
        if case .tcp(let host, _) = self { return host }
        return ""
    }
}
