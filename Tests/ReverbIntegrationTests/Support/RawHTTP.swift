import NIOCore
import Reverb
import Testing

#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

/// Plain HTTP/1.1 over a raw TCP connection: the request bytes are exactly what the test wrote.
enum RawHTTP {
    /// Sends `request` and collects the response head and body until the server closes or the body
    /// reaches its `Content-Length`.
    static func send(port: Int, request: String) async throws -> RawHTTPResponse {
        let client = try await WebSocketTestClient.open(port: port, request: request)
        defer { client.channel.close(promise: nil) }
        var response = client.response
        let length = response.values("content-length").first.flatMap { Int($0) }
        while length.map({ response.body.count < $0 }) ?? true {
            guard let event = await client.nextEvent() else { throw TestClientError.timeout("the response body") }
            switch event {
            case .body(let bytes): response.body += bytes
            case .eof: return response
            default: throw TestClientError.unexpected("body bytes", event)
            }
        }
        return response
    }

    /// A request with `Connection: close`, `Content-Length` when there is a body.
    static func request(
        method: String, target: String, port: Int, headers: [(String, String)] = [], body: String? = nil
    ) -> String {
        var text = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if let body {
            text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
        }
        text += "Connection: close\r\n\r\n"
        return text + (body ?? "")
    }
}

extension TestServer {
    /// A signed HTTP API request (`http-api.md` §2) for `app`, timestamped now.
    func api(
        _ method: String, _ path: String, query: [(String, String)] = [], body: String? = nil, app: Application? = nil
    ) async throws -> RawHTTPResponse {
        let app = app ?? self.app
        let fullPath = prefix + path
        let signed = RequestSigner(key: app.key, secret: app.secret).signedQuery(
            method: method, path: fullPath, parameters: query, body: body ?? "", timestamp: Int64(unixTime()))
        let target = "\(fullPath)?\(signed)"
        return try await http(RawHTTP.request(method: method, target: target, port: port, body: body))
    }

    /// Publishes one event through `POST /apps/{id}/events` and expects `200`.
    func publish(
        event: String = "App\\Events\\TestEvent", channels: [String], data: String = #"{"foo":"bar"}"#,
        socketID: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        var body =
            #"{"name":"# + jsonString(event) + #","channels":["#
            + channels.map(jsonString).joined(separator: ",") + #"],"data":"# + jsonString(data)
        if let socketID { body += #","socket_id":"# + jsonString(socketID) }
        body += "}"
        let response = try await api("POST", "/apps/\(app.id)/events", body: body)
        #expect(response.status == 200, "\(response)", sourceLocation: sourceLocation)
    }

    /// The occupied channels the HTTP API reports (`GET /apps/{id}/channels`), as its raw body.
    func channelsBody(sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        let response = try await api("GET", "/apps/\(app.id)/channels")
        #expect(response.status == 200, "\(response)", sourceLocation: sourceLocation)
        return response.bodyText
    }
}

/// Seconds since 1970 from the system clock.
func unixTime() -> Int {
    var spec = timespec()
    clock_gettime(CLOCK_REALTIME, &spec)
    return Int(spec.tv_sec)
}
