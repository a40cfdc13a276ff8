import NIOCore
import Reverb
import Testing

@Suite("Graceful shutdown of plain-HTTP connections")
struct HTTPShutdownTests {
    @Test("shutdown closes an idle keep-alive HTTP connection at once")
    func idleKeepAliveClosed() async throws {
        try await withTestServer { server in
            let client = try await WebSocketTestClient.open(
                port: server.port, request: "GET /up HTTP/1.1\r\nHost: 127.0.0.1:\(server.port)\r\n\r\n")
            defer { client.channel.close(promise: nil) }
            #expect(client.response.status == 200)
            #expect(client.response.values("connection").isEmpty, "\(client.response)")
            var body: [UInt8] = []
            while body.count < 15 {
                guard case .body(let bytes)? = await client.nextEvent() else {
                    Issue.record("no body")
                    return
                }
                body += bytes
            }
            #expect(String(decoding: body, as: UTF8.self) == #"{"health":"OK"}"#)
            let start = ContinuousClock.now
            await server.server.shutdown()
            guard case .eof? = await client.nextEvent(timeout: .seconds(5)) else {
                Issue.record("the connection is still open after shutdown")
                return
            }
            #expect(ContinuousClock.now - start < .seconds(5))
        }
    }
}
