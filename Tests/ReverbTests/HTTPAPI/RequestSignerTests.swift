import NIOCore
import NIOHTTP1
import Testing

@testable import Reverb

/// `RequestSigner` against `RequestSignature.verify`: what every client here sends, the server accepts.
@Suite("Request signer (http-api.md §2)")
struct RequestSignerTests {
    static let app = Application(id: "3", key: "278d425bdf160c739803", secret: "7ad3773142a6692b25b8")
    static let timestamp: Int64 = 1_353_088_179
    let signer = RequestSigner(key: Self.app.key, secret: Self.app.secret)

    /// The failure, nil when the request verifies.
    func verify(_ method: String, _ uri: String, body: String = "", prefix: String = "")
        -> RequestSignature.Failure?
    {
        let request = HTTPAPIRequest(
            head: HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: uri),
            body: ByteBuffer(string: body))
        switch RequestSignature.verify(request, application: Self.app, prefix: prefix, now: Self.timestamp) {
        case .success: return nil
        case .failure(let failure): return failure
        }
    }

    @Test("the string to sign: method, path, parameters sorted by lowercased name, values unencoded")
    func stringToSign() {
        #expect(
            RequestSignature.stringToSign(
                method: "GET", path: "/apps/3/channels",
                parameters: [("info", "user_count"), ("Auth_Key", "k"), ("filter_by_prefix", "a b&c")])
                == "GET\n/apps/3/channels\nauth_key=k&filter_by_prefix=a b&c&info=user_count")
    }

    @Test("Pusher's published POST vector, body_md5 included")
    func pusherVector() {
        let body = #"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#
        let query = signer.signedQuery(method: "POST", path: "/apps/3/events", body: body, timestamp: Self.timestamp)
        #expect(
            query
                == "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        )
        #expect(verify("POST", "/apps/3/events?" + query, body: body) == nil)
        let bytes = signer.signedQuery(
            method: "POST", path: "/apps/3/events", body: ByteBuffer(string: body), timestamp: Self.timestamp)
        #expect(bytes == query)
        #expect(verify("POST", "/apps/3/events?" + query, body: body + " ") == .invalid)
    }

    @Test("GET without a body: no body_md5, the spec's vector, and the server accepts it")
    func getWithoutBody() {
        let query = signer.signedQuery(
            method: "GET", path: "/apps/3/channels",
            parameters: [("filter_by_prefix", "presence-"), ("info", "user_count")],
            timestamp: Self.timestamp)
        #expect(!query.contains("body_md5"))
        #expect(query.hasSuffix("&auth_signature=16819168891cb5dfd72b5c7a5d3d602605b26c6ba1930033b5e2eeeb65010291"))
        #expect(verify("GET", "/apps/3/channels?" + query) == nil)
        #expect(verify("POST", "/apps/3/channels?" + query) == .invalid)
        #expect(verify("GET", "/apps/3/connections?" + query) == .invalid)
    }

    @Test("values needing percent-encoding and upper-case names still verify")
    func encodedParameters() {
        let query = signer.signedQuery(
            method: "GET", path: "/apps/3/channels", parameters: [("Filter_By_Prefix", "a b&c=d+é"), ("info", "x,y")],
            timestamp: Self.timestamp)
        #expect(query.hasPrefix("Filter_By_Prefix=a%20b%26c%3Dd%2B%C3%A9&info=x%2Cy&"))
        #expect(verify("GET", "/apps/3/channels?" + query) == nil)
    }

    @Test("a route prefix: signed with or without it, the server accepts both; without it only under that prefix")
    func prefixedPath() {
        let body = #"{"name":"a","channel":"b","data":"c"}"#
        let full = signer.signedQuery(method: "POST", path: "/ws/apps/3/events", body: body, timestamp: Self.timestamp)
        #expect(verify("POST", "/ws/apps/3/events?" + full, body: body, prefix: "/ws") == nil)
        let stripped = signer.signedQuery(method: "POST", path: "/apps/3/events", body: body, timestamp: Self.timestamp)
        #expect(verify("POST", "/ws/apps/3/events?" + stripped, body: body, prefix: "/ws") == nil)
        #expect(verify("POST", "/ws/apps/3/events?" + stripped, body: body, prefix: "") == .invalid)
    }

    @Test("another secret or an old timestamp fails")
    func failures() {
        let other = RequestSigner(key: Self.app.key, secret: "wrong")
        let query = other.signedQuery(method: "GET", path: "/apps/3/channels", timestamp: Self.timestamp)
        #expect(verify("GET", "/apps/3/channels?" + query) == .invalid)
        let old = signer.signedQuery(method: "GET", path: "/apps/3/channels", timestamp: Self.timestamp - 601)
        #expect(
            verify("GET", "/apps/3/channels?" + old)
                == .timestampExpired(timestamp: "1353087578", now: Self.timestamp))
    }
}
