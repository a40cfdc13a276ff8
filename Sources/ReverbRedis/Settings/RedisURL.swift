/// The parts of a Redis URL (RFC 3986), percent-decoded; nothing validated yet.
struct RedisURL {
    /// Lowercased scheme, `nil` for a scheme-relative `//host` URL.
    var scheme: String?
    var user: String?
    var password: String?
    /// Host without IPv6 brackets; `nil` when empty.
    var host: String?
    var port: String?
    /// The decoded path, leading `/` included.
    var path: String
    /// Query pairs in order, form-decoded.
    var query: [(key: String, value: String)]

    /// Splits `text`; `nil` when it is not `scheme://authority[/path][?query]` or `//authority...`.
    init?(_ text: String) {
        var rest = Substring(text)
        if rest.hasPrefix("//") {
            scheme = nil
        } else {
            guard let colon = rest.firstIndex(of: ":") else { return nil }
            let name = rest[..<colon]
            guard let first = name.first, first.isASCII, first.isLetter,
                name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) })
            else { return nil }
            scheme = name.lowercased()
            rest = rest[rest.index(after: colon)...]
            guard rest.hasPrefix("//") else { return nil }
        }
        rest = rest.dropFirst(2)
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        var queryText: Substring = ""
        if let question = rest.firstIndex(of: "?") {
            queryText = rest[rest.index(after: question)...]
            rest = rest[..<question]
        }
        let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        path = Self.percentDecode(rest[authorityEnd...])

        user = nil
        password = nil
        if let at = authority.lastIndex(of: "@") {
            let userinfo = authority[..<at]
            authority = authority[authority.index(after: at)...]
            if let colon = userinfo.firstIndex(of: ":") {
                user = Self.percentDecode(userinfo[..<colon])
                password = Self.percentDecode(userinfo[userinfo.index(after: colon)...])
            } else {
                user = Self.percentDecode(userinfo)
            }
        }

        var hostText: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            hostText = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                return nil
            }
        } else if let colon = authority.firstIndex(of: ":") {
            hostText = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            hostText = authority
        }
        let decodedHost = Self.percentDecode(hostText)
        host = decodedHost.isEmpty ? nil : decodedHost
        port = portText.map { Self.percentDecode($0) }.flatMap { $0.isEmpty ? nil : $0 }

        query = queryText.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = Self.formDecode(parts[0])
            let value = parts.count > 1 ? Self.formDecode(parts[1]) : ""
            return (key, value)
        }
    }

    /// `rawurldecode`: `%XX` becomes a byte, `+` stays; malformed escapes stay as written.
    static func percentDecode(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var utf8 = text.utf8[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "%"), utf8.count >= 2,
                let high = hexValue(utf8[utf8.startIndex]),
                let low = hexValue(utf8[utf8.index(after: utf8.startIndex)])
            {
                bytes.append(high << 4 | low)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Form decoding for query values: `+` is a space, then percent-decoding.
    static func formDecode(_ text: Substring) -> String {
        percentDecode(Substring(text.replacing("+", with: " ")))
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
