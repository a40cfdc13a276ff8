import ReverbRedis
import Testing

@Suite struct RedisClusterRedirectTests {
    @Test func movedAndAsk() {
        #expect(
            RedisClusterRedirect(errorReply: "MOVED 3999 127.0.0.1:6381", host: "h")
                == .moved(slot: 3999, to: .tcp(host: "127.0.0.1", port: 6381)))
        #expect(
            RedisClusterRedirect(errorReply: "ASK 12182 redis-2.internal:7000", host: "h")
                == .ask(slot: 12182, to: .tcp(host: "redis-2.internal", port: 7000)))
        // Redis leaves the host out when it does not know the node's endpoint: the node asked.
        #expect(
            RedisClusterRedirect(errorReply: "MOVED 1 :7001", host: "10.0.0.9")
                == .moved(slot: 1, to: .tcp(host: "10.0.0.9", port: 7001)))
        #expect(
            RedisClusterRedirect(errorReply: "MOVED 1 [::1]:7001", host: "h")
                == .moved(slot: 1, to: .tcp(host: "::1", port: 7001)))
        #expect(
            RedisClusterRedirect(errorReply: "MOVED 1 ::1:7001", host: "h")
                == .moved(slot: 1, to: .tcp(host: "::1", port: 7001)))
    }

    @Test func tryAgain() {
        #expect(RedisClusterRedirect(errorReply: "CLUSTERDOWN The cluster is down", host: "h") == .tryAgain)
        #expect(
            RedisClusterRedirect(errorReply: "TRYAGAIN Multiple keys request during rehashing of slot", host: "h")
                == .tryAgain)
    }

    @Test(arguments: [
        "ERR unknown command", "MOVED", "MOVED x 1.2.3.4:5", "MOVED 16384 h:1", "MOVED 1 h:0", "MOVED 1 h", "WRONGTYPE",
    ])
    func notARedirect(text: String) {
        #expect(RedisClusterRedirect(errorReply: text, host: "h") == nil)
    }
}
