import COpenSSL

/// HMAC-SHA256 and MD5 over libcrypto, and constant-time comparison: the only place that touches C
/// for signatures (channel auth, HTTP API requests).
public enum Signature {
    /// Lowercase hex HMAC-SHA256 of `message` keyed with `key`.
    public static func hmacSHA256Hex(key: String, message: String) -> String {
        var key = key
        var message = message
        return key.withUTF8 { keyBytes in
            message.withUTF8 { messageBytes in
                hmacSHA256Hex(key: UnsafeRawBufferPointer(keyBytes), message: UnsafeRawBufferPointer(messageBytes))
            }
        }
    }

    /// Lowercase hex HMAC-SHA256 of raw bytes.
    public static func hmacSHA256Hex(key: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer) -> String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        digest.withUnsafeMutableBufferPointer { out in
            _ = HMAC(
                EVP_sha256(), key.baseAddress, Int32(key.count),
                message.baseAddress?.assumingMemoryBound(to: UInt8.self),
                message.count, out.baseAddress, &length)
        }
        return hex(digest[0..<Int(length)])
    }

    /// Lowercase hex MD5 of `bytes`.
    public static func md5Hex(_ bytes: UnsafeRawBufferPointer) -> String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        digest.withUnsafeMutableBufferPointer { out in
            _ = EVP_Digest(bytes.baseAddress, bytes.count, out.baseAddress, &length, EVP_md5(), nil)
        }
        return hex(digest[0..<Int(length)])
    }

    public static func md5Hex(_ string: String) -> String {
        var string = string
        return string.withUTF8 { md5Hex(UnsafeRawBufferPointer($0)) }
    }

    /// Compares two strings in time that depends only on their lengths, never on where they differ.
    public static func constantTimeEquals(_ lhs: String, _ rhs: String) -> Bool {
        var lhs = lhs
        var rhs = rhs
        return lhs.withUTF8 { a in
            rhs.withUTF8 { b in
                guard a.count == b.count else { return false }
                if a.isEmpty { return true }
                return CRYPTO_memcmp(a.baseAddress, b.baseAddress, a.count) == 0
            }
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private static func hex(_ bytes: ArraySlice<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(hexDigits[Int(byte >> 4)])
            out.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
