import NIOCore
import NIOHTTP1

/// HTTP API request signing (`http-api.md` §2): the string to sign, `body_md5`, the timestamp window
/// and the constant-time comparison over every accepted path form.
struct RequestSignature {
    /// Largest accepted distance between `auth_timestamp` and the server clock, in seconds.
    static let timestampWindow: Int64 = 600
    static let emptyBodyMD5 = "d41d8cd98f00b204e9800998ecf8427e"

    enum Failure: Error, Equatable {
        case parametersMissing
        case timestampExpired(timestamp: String, now: Int64)
        case invalid

        var response: HTTPResponse {
            switch self {
            case .parametersMissing:
                return .text(.unauthorized, "Authentication parameters missing.")
            case .timestampExpired(let timestamp, let now):
                return .text(
                    .unauthorized,
                    "Timestamp expired: \(timestamp) is not within \(RequestSignature.timestampWindow) s of server time \(now)."
                )
            case .invalid:
                return .text(.unauthorized, "Authentication signature invalid.")
            }
        }
    }

    /// Checks `request` against `application`'s key and secret.
    /// - Parameter prefix: the route prefix (`/ws`), tried both kept and removed.
    static func verify(
        _ request: HTTPAPIRequest, application: Application, prefix: String, now: Int64
    ) -> Result<Void, Failure> {
        var parameters: [String: String] = [:]
        for (name, value) in request.queryItems {
            var key = name.lowercased()
            if key.hasSuffix("[]") {
                key.removeLast(2)
                if let existing = parameters[key], name.hasSuffix("[]") {
                    parameters[key] = existing + "," + value
                    continue
                }
            }
            parameters[key] = value
        }
        guard let authKey = parameters["auth_key"], let timestamp = parameters["auth_timestamp"],
            let signature = parameters.removeValue(forKey: "auth_signature")
        else { return .failure(.parametersMissing) }
        guard !timestamp.isEmpty, timestamp.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let seconds = Int64(timestamp)
        else { return .failure(.invalid) }
        guard abs(now - seconds) <= timestampWindow else {
            return .failure(.timestampExpired(timestamp: timestamp, now: now))
        }
        guard Signature.constantTimeEquals(authKey, application.key) else { return .failure(.invalid) }
        if let version = parameters["auth_version"], version != "1.0" { return .failure(.invalid) }
        if request.body.readableBytes > 0 {
            parameters["body_md5"] = request.body.withUnsafeReadableBytes { Signature.md5Hex($0) }
        } else if let md5 = parameters["body_md5"], md5 != emptyBodyMD5 {
            return .failure(.invalid)
        }
        var valid = false
        let query = canonicalQuery(parameters.map { $0 })
        for path in pathCandidates(rawPath: request.rawPath, prefix: prefix) {
            let expected = Signature.hmacSHA256Hex(
                key: application.secret,
                message: stringToSign(method: request.method, path: path, canonicalQuery: query))
            // Every candidate is compared, so timing does not reveal which form matched.
            if Signature.constantTimeEquals(signature, expected) { valid = true }
        }
        return valid ? .success(()) : .failure(.invalid)
    }

    /// `METHOD\nPATH\nQUERY`, the query being every parameter but `auth_signature` as `name=value`
    /// (names lowercased, values not encoded), sorted by name bytes and joined with `&`. The one
    /// definition both `verify` and `RequestSigner` use.
    static func stringToSign(method: String, path: String, parameters: [(key: String, value: String)]) -> String {
        stringToSign(method: method, path: path, canonicalQuery: canonicalQuery(parameters))
    }

    static func stringToSign(method: String, path: String, canonicalQuery: String) -> String {
        "\(method)\n\(path)\n\(canonicalQuery)"
    }

    /// The parameters as `name=value`, names lowercased, sorted by name bytes, joined with `&`.
    static func canonicalQuery(_ parameters: [(key: String, value: String)]) -> String {
        parameters.map { (key: $0.key.lowercased(), value: $0.value) }
            .sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            .map { "\($0.key)=\($0.value)" }.joined(separator: "&")
    }

    /// The raw path, the same without the prefix, and their percent-decoded forms when different.
    static func pathCandidates(rawPath: String, prefix: String) -> [String] {
        var candidates = [rawPath]
        if !prefix.isEmpty, rawPath.hasPrefix(prefix + "/") {
            candidates.append(String(rawPath.dropFirst(prefix.utf8.count)))
        }
        for candidate in candidates {
            if let decoded = PercentDecoding.decode(candidate, plusAsSpace: false), decoded != candidate {
                candidates.append(decoded)
            }
        }
        return candidates
    }
}
