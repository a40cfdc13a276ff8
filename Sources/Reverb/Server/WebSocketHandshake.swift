import COpenSSL
import NIOCore
import NIOHTTP1

/// The RFC 6455 handshake checks and `101` response of `protocol.md` §1.2.
enum WebSocketHandshake {
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// The `101` headers in the spec's order, or the refusal to send before closing.
    static func validate(_ head: HTTPRequestHead) -> Result<HTTPHeaders, HTTPResponse> {
        guard head.method == .GET else { return .failure(.methodNotAllowed(allow: ["GET"])) }
        guard head.version.major > 1 || (head.version.major == 1 && head.version.minor >= 1) else {
            return .failure(.text(.httpVersionNotSupported, "HTTP version not supported."))
        }
        guard headerTokens(head.headers, "upgrade").contains("websocket") else {
            var response = HTTPResponse.text(.upgradeRequired, "Upgrade required.")
            response.extraHeaders = [
                ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Version", "13"),
            ]
            return .failure(response)
        }
        guard headerTokens(head.headers, "connection").contains("upgrade") else {
            return .failure(.badRequest)
        }
        let keys = head.headers["sec-websocket-key"]
        guard keys.count == 1, let key = keys.first, isValidKey(key) else { return .failure(.badRequest) }
        guard head.headers["sec-websocket-version"] == ["13"] else {
            var response = HTTPResponse.text(.upgradeRequired, "Upgrade required.")
            response.extraHeaders = [("Sec-WebSocket-Version", "13")]
            return .failure(response)
        }
        var headers = HTTPHeaders()
        headers.add(name: "Upgrade", value: "websocket")
        headers.add(name: "Connection", value: "Upgrade")
        headers.add(name: "Sec-WebSocket-Accept", value: acceptValue(forKey: key))
        headers.add(name: "X-Powered-By", value: "swift-reverb")
        return .success(headers)
    }

    /// Comma-separated header tokens, lowercased and trimmed, across repeated headers.
    static func headerTokens(_ headers: HTTPHeaders, _ name: String) -> [String] {
        headers[name].flatMap { value in
            value.split(separator: ",").map { $0.trimmingSpaces().lowercased() }
        }
    }

    /// Whether `key` is base64 of exactly 16 bytes.
    static func isValidKey(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        guard bytes.count == 24, bytes[22] == UInt8(ascii: "="), bytes[23] == UInt8(ascii: "=") else { return false }
        guard bytes[0..<22].allSatisfy(Base64.isAlphabet) else { return false }
        // The 22nd character carries 2 data bits; its 4 low bits must be zero.
        return "AQgw".utf8.contains(bytes[21])
    }

    /// base64(SHA-1(key + GUID)).
    static func acceptValue(forKey key: String) -> String {
        let input = Array((key + guid).utf8)
        var digest = [UInt8](repeating: 0, count: 20)
        input.withUnsafeBufferPointer { inputBytes in
            digest.withUnsafeMutableBufferPointer { out in
                _ = SHA1(inputBytes.baseAddress, inputBytes.count, out.baseAddress)
            }
        }
        return Base64.encode(digest)
    }
}

/// Standard base64 with padding.
enum Base64 {
    private static let alphabet: [UInt8] = Array(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func isAlphabet(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "/"):
            return true
        default:
            return false
        }
    }

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let b0 = bytes[i]
            let b1 = i + 1 < bytes.count ? bytes[i + 1] : 0
            let b2 = i + 2 < bytes.count ? bytes[i + 2] : 0
            out.append(alphabet[Int(b0 >> 2)])
            out.append(alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)])
            out.append(i + 1 < bytes.count ? alphabet[Int((b1 & 0x0F) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? alphabet[Int(b2 & 0x3F)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while let first = s.first, first == " " || first == "\t" { s.removeFirst() }
        while let last = s.last, last == " " || last == "\t" { s.removeLast() }
        return s
    }
}
