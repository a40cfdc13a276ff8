/// Connection identifiers `A.B`, each part uniform in 1...1 000 000 000 (`protocol.md` §1.4).
public enum SocketID {
    /// A fresh id; uniqueness among open connections is the caller's check.
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> String {
        let a = UInt32.random(in: 1...1_000_000_000, using: &generator)
        let b = UInt32.random(in: 1...1_000_000_000, using: &generator)
        return "\(a).\(b)"
    }

    public static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        return random(using: &generator)
    }

    /// Whether `string` has the socket id form `^[1-9][0-9]{0,9}\.[1-9][0-9]{0,9}$`.
    public static func isValid(_ string: String) -> Bool {
        let parts = string.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 2 else { return false }
        return parts.allSatisfy { part in
            guard let first = part.first, first != UInt8(ascii: "0"), part.count <= 10 else { return false }
            return part.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        }
    }
}
