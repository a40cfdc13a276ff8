/// The `allowed_origins` check of `protocol.md` §1.3.
enum OriginPolicy {
    /// Whether a connection with this `Origin` header may join an app allowing `patterns`.
    static func allows(origin: String?, patterns: [String]) -> Bool {
        if patterns.contains("*") { return true }
        guard let origin, let host = host(ofOrigin: origin) else { return false }
        return patterns.contains { matches(host: Substring(host), pattern: Substring($0)) }
    }

    /// The host of an origin such as `https://app.example.com:8443`; scheme, port and path dropped.
    static func host(ofOrigin origin: String) -> String? {
        let utf8 = Array(origin.utf8)
        guard
            let separator = (0..<max(0, utf8.count - 2)).first(where: {
                utf8[$0] == UInt8(ascii: ":") && utf8[$0 + 1] == UInt8(ascii: "/") && utf8[$0 + 2] == UInt8(ascii: "/")
            })
        else { return nil }
        var rest = Substring(String(decoding: utf8[(separator + 3)...], as: UTF8.self))
        if let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) {
            rest = rest[..<end]
        }
        if let at = rest.lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }
        if rest.first == "[" {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            rest = rest[...close]
        } else if let colon = rest.firstIndex(of: ":") {
            rest = rest[..<colon]
        }
        return rest.isEmpty ? nil : String(rest)
    }

    /// Whole-string match where `*` stands for any run of characters, the empty run included.
    static func matches(host: Substring, pattern: Substring) -> Bool {
        let h = Array(host.utf8)
        let p = Array(pattern.utf8)
        var hi = 0
        var pi = 0
        var starAt = -1
        var resumeAt = 0
        while hi < h.count {
            if pi < p.count && p[pi] == UInt8(ascii: "*") {
                starAt = pi
                resumeAt = hi
                pi += 1
            } else if pi < p.count && p[pi] == h[hi] {
                pi += 1
                hi += 1
            } else if starAt >= 0 {
                pi = starAt + 1
                resumeAt += 1
                hi = resumeAt
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}
