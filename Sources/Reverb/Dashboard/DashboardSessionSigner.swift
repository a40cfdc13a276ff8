/// Dashboard session cookies and their CSRF tokens (docs.md "Dashboard").
///
/// A session is `1.<expiry>.<nonce>.<scope>.<mac>`: expiry in Unix seconds, 16 random bytes as hex,
/// `*` (every app, the dashboard password) or `a` and the hex of an app id, then the HMAC-SHA256
/// hex of everything before it under a key drawn at start-up (so a restart ends every session).
/// Nothing in it is secret but the MAC's key; the server keeps no session table. The CSRF token of
/// a session is the HMAC of `csrf.<nonce>` under the same key: a page that cannot read the session's
/// pages cannot compute it.
struct DashboardSessionSigner: Sendable {
    struct Session: Equatable, Sendable {
        enum Scope: Equatable, Sendable {
            /// Logged in with this app's id and secret.
            case app(String)
            /// Logged in with the dashboard password.
            case all
        }

        var scope: Scope
        /// Unix seconds.
        var expiresAt: Int64
        var nonce: String

        func canSee(appID: String) -> Bool {
            switch scope {
            case .all: return true
            case .app(let id): return id == appID
            }
        }
    }

    static let cookieName = "reverb_dashboard"
    /// How long a session lasts, in seconds (8 hours).
    static let lifetime: Int64 = 8 * 3600

    private let key: String

    /// - Parameter key: the MAC key; `randomKey()` in the server, fixed in tests.
    init(key: String) {
        self.key = key
    }

    /// 32 random bytes as hex.
    static func randomKey() -> String { randomHex(bytes: 32) }

    /// `bytes` bytes from the system's generator, as hex. Not generic over an `inout` generator:
    /// ThreadSanitizer's check of that access crashed the instrumented build (a SEGV reading the
    /// shadow of the address passed for the empty `SystemRandomNumberGenerator`, `make test-tsan`).
    static func randomHex(bytes: Int) -> String {
        hex((0..<bytes).map { _ in UInt8.random(in: .min ... .max) })
    }

    /// A new session and its cookie value.
    func issue(scope: Session.Scope, now: Int64) -> (token: String, session: Session) {
        let session = Session(scope: scope, expiresAt: now + Self.lifetime, nonce: Self.randomHex(bytes: 16))
        return (token(for: session), session)
    }

    /// The cookie value of `session`.
    func token(for session: Session) -> String {
        let scope: String
        switch session.scope {
        case .all: scope = "*"
        case .app(let id): scope = "a" + Self.hex(Array(id.utf8))
        }
        let body = "1.\(session.expiresAt).\(session.nonce).\(scope)"
        return body + "." + Signature.hmacSHA256Hex(key: key, message: body)
    }

    /// The session of a cookie value: nil when it is malformed, its MAC is wrong, or it has expired.
    func verify(_ token: String, now: Int64) -> Session? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "1", let expiresAt = Int64(parts[1]) else { return nil }
        let body = parts[0..<4].joined(separator: ".")
        guard Signature.constantTimeEquals(String(parts[4]), Signature.hmacSHA256Hex(key: key, message: body)) else {
            return nil
        }
        guard now < expiresAt else { return nil }
        let scopeText = parts[3]
        let scope: Session.Scope
        if scopeText == "*" {
            scope = .all
        } else if scopeText.first == "a", let bytes = Self.unhex(scopeText.dropFirst()),
            let id = String(validating: bytes, as: UTF8.self)
        {
            scope = .app(id)
        } else {
            return nil
        }
        return Session(scope: scope, expiresAt: expiresAt, nonce: String(parts[2]))
    }

    /// The session cookie of one from `Cookie` headers, if any.
    static func cookie(in headers: [String]) -> String? {
        for header in headers {
            for pair in header.split(separator: ";") {
                let trimmed = pair.drop { $0 == " " }
                if trimmed.hasPrefix(cookieName + "=") { return String(trimmed.dropFirst(cookieName.count + 1)) }
            }
        }
        return nil
    }

    // MARK: CSRF

    /// What a state-changing request of `session` must send in `X-CSRF-Token`.
    func csrfToken(for session: Session) -> String {
        Signature.hmacSHA256Hex(key: key, message: "csrf.\(session.nonce)")
    }

    /// Whether `given` is `session`'s CSRF token (compared in constant time).
    func checkCSRF(_ given: String?, session: Session) -> Bool {
        guard let given else { return false }
        return Signature.constantTimeEquals(given, csrfToken(for: session))
    }

    // MARK: Hex

    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    private static func hex(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xf)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func unhex(_ text: Substring) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var index = 0
        while index < utf8.count {
            guard let high = digits.firstIndex(of: utf8[index]), let low = digits.firstIndex(of: utf8[index + 1])
            else { return nil }
            out.append(UInt8(high << 4 | low))
            index += 2
        }
        return out
    }
}
