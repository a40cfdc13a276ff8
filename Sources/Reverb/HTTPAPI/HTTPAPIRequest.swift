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
    /// Query parameters: names and values percent-decoded (`+` is a space), in order of
    /// appearance; parsed once, here.
    let queryItems: [(name: String, value: String)]

    init(head: HTTPRequestHead, body: ByteBuffer) {
        self.method = head.method.rawValue
        let target = Self.split(head.uri)
        rawPath = String(target.path)
        rawQuery = target.query.map(String.init) ?? ""
        self.headers = head.headers
        self.body = body
        self.queryItems = Self.parseQuery(rawQuery)
    }

    /// A request target cut at its first `?` byte into path and query (without the `?`; `nil` when
    /// there is none). The connection routes with this and the API signs with it, so both see the
    /// same path. Byte-wise on purpose: a Character-wise search treats `?` followed by a combining
    /// mark (U+0301) as one character and finds no `?` at all (found by `FuzzHTTPRequest`), and
    /// costs several times more per request.
    static func split(_ uri: String) -> (path: Substring, query: Substring?) {
        guard let question = uri.utf8.firstIndex(of: UInt8(ascii: "?")) else { return (uri[...], nil) }
        return (Substring(uri.utf8[..<question]), Substring(uri.utf8[uri.utf8.index(after: question)...]))
    }

    static func parseQuery(_ query: String) -> [(name: String, value: String)] {
        query.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true).compactMap { pair in
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            // `&` and `=` are ASCII, so each part is whole UTF-8.
            guard let name = PercentDecoding.decode(Substring(parts[0]), plusAsSpace: true) else { return nil }
            let value = parts.count > 1 ? PercentDecoding.decode(Substring(parts[1]), plusAsSpace: true) ?? "" : ""
            return (name, value)
        }
    }

    /// The last value of a query parameter.
    func query(_ name: String) -> String? {
        queryItems.last { $0.name == name }?.value
    }
}
