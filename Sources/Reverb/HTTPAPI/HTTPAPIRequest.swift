import NIOCore
import NIOHTTP1

/// A complete HTTP request as the API routes see it.
struct HTTPAPIRequest: Sendable {
    var method: String
    /// The path as sent, still percent-encoded, without the query.
    var rawPath: String
    /// The query string as sent, without `?`.
    var rawQuery: String
    var headers: HTTPHeaders
    var body: ByteBuffer

    init(head: HTTPRequestHead, body: ByteBuffer) {
        self.method = head.method.rawValue
        let uri = head.uri
        if let question = uri.firstIndex(of: "?") {
            rawPath = String(uri[..<question])
            rawQuery = String(uri[uri.index(after: question)...])
        } else {
            rawPath = uri
            rawQuery = ""
        }
        self.headers = head.headers
        self.body = body
    }

    /// Query parameters: names and values percent-decoded (`+` is a space), in order of appearance.
    var queryItems: [(name: String, value: String)] {
        rawQuery.split(separator: "&", omittingEmptySubsequences: true).compactMap { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = PercentDecoding.decode(parts[0], plusAsSpace: true) else { return nil }
            let value = parts.count > 1 ? PercentDecoding.decode(parts[1], plusAsSpace: true) ?? "" : ""
            return (name, value)
        }
    }

    /// The last value of a query parameter.
    func query(_ name: String) -> String? {
        queryItems.last { $0.name == name }?.value
    }
}
