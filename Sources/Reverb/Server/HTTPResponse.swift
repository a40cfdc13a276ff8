import NIOCore
import NIOHTTP1

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A complete HTTP response: JSON or plain text, with the headers `http-api.md` §1 requires.
struct HTTPResponse: Sendable {
    var status: HTTPResponseStatus
    var contentType: String
    var body: ByteBuffer
    var extraHeaders: [(String, String)] = []
    /// Close the connection after this response.
    var closeConnection = false

    static func json(_ status: HTTPResponseStatus, _ body: ByteBuffer) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "application/json", body: body)
    }

    static func json(_ status: HTTPResponseStatus, _ text: String) -> HTTPResponse {
        json(status, ByteBuffer(string: text))
    }

    static func json(_ status: HTTPResponseStatus, _ value: JSONValue) -> HTTPResponse {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        JSONWriter.write(value, into: &buffer)
        return json(status, buffer)
    }

    static func text(_ status: HTTPResponseStatus, _ text: String) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "text/plain; charset=utf-8", body: ByteBuffer(string: text))
    }

    static let notFound = text(.notFound, "Not found.")
    static let badRequest = text(.badRequest, "Bad request.")
    static let payloadTooLarge = text(.payloadTooLarge, "Payload too large.")
    static let internalError = text(.internalServerError, "Internal server error.")

    static func methodNotAllowed(allow: [String]) -> HTTPResponse {
        var response = text(.methodNotAllowed, "Method not allowed.")
        response.extraHeaders = [("Allow", allow.joined(separator: ", "))]
        return response
    }

    /// The response head with `Content-Length`, `Date`, `Cache-Control` and `Content-Type`.
    func head(version: HTTPVersion, keepAlive: Bool) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Date", value: HTTPDate.now())
        headers.add(name: "Cache-Control", value: "no-cache, private")
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        let setsConnection = extraHeaders.contains { $0.0.lowercased() == "connection" }
        if !keepAlive {
            if !setsConnection { headers.add(name: "Connection", value: "close") }
        } else if version == .http1_0 {
            headers.add(name: "Connection", value: "keep-alive")
        }
        return HTTPResponseHead(version: version == .http1_0 ? .http1_0 : .http1_1, status: status, headers: headers)
    }
}

/// RFC 9110 IMF-fixdate for the `Date` header.
enum HTTPDate {
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func now() -> String {
        var t = time(nil)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return
            "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}

/// Validation helpers fail with the response to send.
extension HTTPResponse: Error {}

extension HTTPResponse: Equatable {
    static func == (lhs: HTTPResponse, rhs: HTTPResponse) -> Bool {
        lhs.status == rhs.status && lhs.contentType == rhs.contentType && lhs.body == rhs.body
            && lhs.closeConnection == rhs.closeConnection
            && lhs.extraHeaders.elementsEqual(rhs.extraHeaders) { $0.0 == $1.0 && $0.1 == $1.1 }
    }
}
