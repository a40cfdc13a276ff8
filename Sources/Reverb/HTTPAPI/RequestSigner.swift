public import NIOCore

/// Signs HTTP API requests as Pusher's SDKs do (`http-api.md` §2): what `RequestSignature` verifies.
///
/// Used by `reverb events:trigger`, `reverb-bench` and the tests, so every client of the server signs
/// with the server's own string to sign.
public struct RequestSigner: Sendable {
    /// The app key, sent as `auth_key`.
    public var key: String
    /// The app secret, the HMAC key.
    public var secret: String

    /// A signer for the app with `key` and `secret`.
    public init(key: String, secret: String) {
        self.key = key
        self.secret = secret
    }

    /// The query string of a signed request, without `?`: `parameters` plus `auth_key`,
    /// `auth_timestamp`, `auth_version` and, for a non-empty body, `body_md5`, percent-encoded, then
    /// `auth_signature`.
    ///
    /// - Parameters:
    ///   - method: `GET` or `POST`.
    ///   - path: The path as sent, route prefix included.
    ///   - parameters: Other query parameters, not encoded.
    ///   - body: The request body.
    ///   - timestamp: Unix seconds.
    public func signedQuery(
        method: String, path: String, parameters: [(String, String)] = [], body: String = "", timestamp: Int64
    ) -> String {
        var body = body
        let md5 = body.isEmpty ? nil : body.withUTF8 { Signature.md5Hex(UnsafeRawBufferPointer($0)) }
        return signedQuery(method: method, path: path, parameters: parameters, bodyMD5: md5, timestamp: timestamp)
    }

    /// The same for a body held in a `ByteBuffer`.
    public func signedQuery(
        method: String, path: String, parameters: [(String, String)] = [], body: ByteBuffer, timestamp: Int64
    ) -> String {
        let md5 = body.readableBytes == 0 ? nil : body.withUnsafeReadableBytes { Signature.md5Hex($0) }
        return signedQuery(method: method, path: path, parameters: parameters, bodyMD5: md5, timestamp: timestamp)
    }

    private func signedQuery(
        method: String, path: String, parameters: [(String, String)], bodyMD5: String?, timestamp: Int64
    ) -> String {
        var all = parameters.map { (key: $0.0, value: $0.1) }
        all.append((key: "auth_key", value: key))
        all.append((key: "auth_timestamp", value: String(timestamp)))
        all.append((key: "auth_version", value: "1.0"))
        if let bodyMD5 { all.append((key: "body_md5", value: bodyMD5)) }
        let signature = Signature.hmacSHA256Hex(
            key: secret, message: RequestSignature.stringToSign(method: method, path: path, parameters: all))
        return all.map { "\(Self.percentEncode($0.key))=\(Self.percentEncode($0.value))" }.joined(separator: "&")
            + "&auth_signature=" + signature
    }

    /// Percent-encodes everything but RFC 3986 unreserved characters.
    private static func percentEncode(_ text: String) -> String {
        let hexDigits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
