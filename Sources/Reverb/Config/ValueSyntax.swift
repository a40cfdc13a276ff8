/// The value syntax shared by the environment, `.env` and flags (`config.md` §5).
public enum ValueSyntax {
    /// `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, `(true)`/`(false)`, any case; `nil` otherwise.
    public static func boolean(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "true", "(true)", "1", "yes", "on": true
        case "false", "(false)", "0", "no", "off": false
        default: nil
        }
    }

    /// An optional sign and decimal digits, no spaces or exponent; `nil` when malformed or out of `Int`.
    public static func integer(_ text: String) -> Int? {
        var digits = Substring(text)
        var negative = false
        if let sign = digits.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            digits.removeFirst()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(digits) else {
            return nil
        }
        return negative ? -value : value
    }

    /// A positive number of seconds, decimals allowed (`2`, `0.5`); `nil` for `2s`, `0`, `1e3`.
    public static func seconds(_ text: String) -> Double? {
        var body = Substring(text)
        if body.first == "+" { body.removeFirst() }
        let parts = body.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let isDigits: (Substring) -> Bool = { !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }
        guard isDigits(parts[0]), parts.count == 1 || isDigits(parts[1]), let value = Double(body), value > 0,
            value.isFinite
        else { return nil }
        return value
    }

    /// Comma-separated items, blanks trimmed, empty items dropped.
    public static func list(_ text: String) -> [String] {
        text.split(separator: ",", omittingEmptySubsequences: false)
            .map(trimmingBlanks)
            .filter { !$0.isEmpty }
    }

    /// The text without leading and trailing white space.
    static func trimmingBlanks(_ text: some StringProtocol) -> String {
        var slice = Substring(text)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}
