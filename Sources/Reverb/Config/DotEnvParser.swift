/// Reads `.env` files with the rules of phpdotenv 5, which Laravel uses (`config.md` §2).
///
/// Pure: the caller reads the file and passes the process environment, which `${NAME}` consults before
/// earlier lines of the file.
public enum DotEnvParser {
    /// One `NAME=VALUE` line (or several, for a multi-line double-quoted value).
    public struct Entry: Sendable, Equatable {
        public var name: String
        /// The value after unquoting, escapes and interpolation; `nil` for a line without `=`, which
        /// leaves NAME unset.
        public var value: String?
        /// 1-based line where the entry starts.
        public var line: Int

        public init(name: String, value: String?, line: Int) {
            self.name = name
            self.value = value
            self.line = line
        }
    }

    /// Parses a whole file.
    /// - Parameters:
    ///   - contents: the file's text; lines may end with `\n`, `\r\n` or `\r`.
    ///   - environment: the process environment. `${NAME}` takes NAME from here first (an empty value
    ///     counts as unset, as everywhere in the configuration), then from earlier lines.
    /// - Returns: the entries in file order; a later entry for the same name replaces an earlier one.
    /// - Throws: the first syntax error, as phpdotenv stops at it.
    public static func parse(
        _ contents: String,
        environment: [String: String] = [:]
    ) throws(DotEnvSyntaxError) -> [Entry] {
        var entries: [Entry] = []
        var defined: [String: String] = [:]
        for logical in logicalLines(of: contents) {
            let entry = try parseEntry(logical.text, line: logical.line) { name in
                if let value = environment[name], !value.isEmpty { return value }
                return defined[name]
            }
            defined[entry.name] = entry.value
            entries.append(entry)
        }
        return entries
    }

    // MARK: - Lines

    /// Splits into physical lines, joins multi-line double-quoted values (with `\n`, as phpdotenv does)
    /// and drops blank and comment lines.
    static func logicalLines(of contents: String) -> [(text: String, line: Int)] {
        var physical: [String] = []
        var current = String.UnicodeScalarView()
        var iterator = contents.unicodeScalars.makeIterator()
        var pendingCR = false
        while let scalar = iterator.next() {
            if pendingCR {
                pendingCR = false
                if scalar == "\n" { continue }
            }
            if scalar == "\n" || scalar == "\r" {
                physical.append(String(current))
                current = String.UnicodeScalarView()
                pendingCR = scalar == "\r"
            } else {
                current.append(scalar)
            }
        }
        physical.append(String(current))

        var output: [(text: String, line: Int)] = []
        var buffer: [String] = []
        var bufferStart = 0
        for (offset, line) in physical.enumerated() {
            if !buffer.isEmpty {
                buffer.append(line)
                if looksLikeMultilineStop(line, started: false) {
                    output.append((buffer.joined(separator: "\n"), bufferStart))
                    buffer = []
                }
            } else if looksLikeMultilineStart(line) {
                buffer = [line]
                bufferStart = offset + 1
            } else if !isCommentOrBlank(line) {
                output.append((line, offset + 1))
            }
        }
        if !buffer.isEmpty {
            output.append((buffer.joined(separator: "\n"), bufferStart))
        }
        return output
    }

    private static func isCommentOrBlank(_ line: String) -> Bool {
        let trimmed = trim(Substring(line))
        return trimmed.isEmpty || trimmed.first == "#"
    }

    private static func looksLikeMultilineStart(_ line: String) -> Bool {
        line.contains("=\"") && !looksLikeMultilineStop(line, started: true)
    }

    /// phpdotenv's test: count quotes not preceded by a backslash (ignoring `\\` pairs).
    private static func looksLikeMultilineStop(_ line: String, started: Bool) -> Bool {
        if line == "\"" { return true }
        var scalars: [Unicode.Scalar] = []
        var pendingBackslash = false
        for scalar in line.unicodeScalars {
            if scalar == "\\" {
                if pendingBackslash {
                    scalars.removeLast()
                    pendingBackslash = false
                    continue
                }
                pendingBackslash = true
            } else {
                pendingBackslash = false
            }
            scalars.append(scalar)
        }
        var seen = started ? 0 : 1
        if scalars.count > 1 {
            for index in 1..<scalars.count where scalars[index] == "\"" && scalars[index - 1] != "\\" {
                seen += 1
            }
        }
        return seen > 1
    }

    // MARK: - Entries

    private static func parseEntry(
        _ text: String,
        line: Int,
        lookup: (String) -> String?
    ) throws(DotEnvSyntaxError) -> Entry {
        let rawName: Substring
        let rawValue: Substring?
        if let equals = text.firstIndex(of: "=") {
            rawName = trim(text[..<equals])
            rawValue = trim(text[text.index(after: equals)...])
        } else {
            rawName = trim(Substring(text))
            rawValue = nil
        }
        if rawName.isEmpty {
            throw DotEnvSyntaxError(line: line, reason: "missing name before \"=\"")
        }
        let name = try parseName(rawName, line: line)
        guard let rawValue else { return Entry(name: name, value: nil, line: line) }
        let value = try ValueParser.parse(rawValue, line: line, lookup: lookup)
        return Entry(name: name, value: value, line: line)
    }

    private static func parseName(_ raw: Substring, line: Int) throws(DotEnvSyntaxError) -> String {
        var name = raw
        if name.hasPrefix("export"), let next = name.dropFirst(6).first, next == " " || next == "\t" {
            name = trim(name.dropFirst(6))
        }
        if name.count > 2, let first = name.first, first == "\"" || first == "'", name.last == first {
            name = name.dropFirst().dropLast()
        }
        let valid = !name.isEmpty && name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." }
        guard valid else { throw DotEnvSyntaxError(line: line, reason: "invalid name \"\(raw)\"") }
        return String(name)
    }

    /// PHP's `trim`: spaces, tabs, line ends, NUL and vertical tab.
    static func trim(_ text: Substring) -> Substring {
        let blanks: Set<Character> = [" ", "\t", "\n", "\r", "\r\n", "\0", "\u{0B}"]
        var result = text
        while let first = result.first, blanks.contains(first) { result.removeFirst() }
        while let last = result.last, blanks.contains(last) { result.removeLast() }
        return result
    }
}

/// The value state machine of phpdotenv's `EntryParser`, one Unicode scalar at a time.
private struct ValueParser {
    private enum State {
        case initial, unquoted, singleQuoted, doubleQuoted, escape, afterQuote, whitespace, comment
    }

    private var output = String.UnicodeScalarView()
    /// Offsets in `output` of `$` signs that may start an interpolation.
    private var interpolations: [Int] = []
    private var state = State.initial

    static func parse(
        _ raw: Substring,
        line: Int,
        lookup: (String) -> String?
    ) throws(DotEnvSyntaxError) -> String {
        var parser = ValueParser()
        for scalar in raw.unicodeScalars {
            try parser.consume(scalar, line: line)
        }
        switch parser.state {
        case .singleQuoted, .doubleQuoted, .escape:
            throw DotEnvSyntaxError(line: line, reason: "missing closing quote in value")
        default:
            return parser.interpolated(lookup: lookup)
        }
    }

    private static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
        scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r" || scalar == "\u{0B}" || scalar == "\u{0C}"
    }

    private mutating func append(_ scalar: Unicode.Scalar, interpolate: Bool = false) {
        if interpolate { interpolations.append(output.count) }
        output.append(scalar)
    }

    private mutating func consume(_ scalar: Unicode.Scalar, line: Int) throws(DotEnvSyntaxError) {
        switch state {
        case .initial:
            switch scalar {
            case "'": state = .singleQuoted
            case "\"": state = .doubleQuoted
            case "#": state = .comment
            default:
                append(scalar, interpolate: scalar == "$")
                state = .unquoted
            }
        case .unquoted:
            if scalar == "#" {
                state = .comment
            } else if Self.isSpace(scalar) {
                state = .whitespace
            } else {
                append(scalar, interpolate: scalar == "$")
            }
        case .singleQuoted:
            if scalar == "'" { state = .afterQuote } else { append(scalar) }
        case .doubleQuoted:
            switch scalar {
            case "\"": state = .afterQuote
            case "\\": state = .escape
            default: append(scalar, interpolate: scalar == "$")
            }
        case .escape:
            switch scalar {
            case "\"", "\\", "$": append(scalar)
            case "n": append("\n")
            case "r": append("\r")
            case "t": append("\t")
            case "f": append("\u{0C}")
            case "v": append("\u{0B}")
            default:
                throw DotEnvSyntaxError(line: line, reason: "unexpected escape sequence \"\\\(scalar)\" in value")
            }
            state = .doubleQuoted
        case .afterQuote, .whitespace:
            if scalar == "#" {
                state = .comment
            } else if !Self.isSpace(scalar) {
                let reason =
                    state == .afterQuote ? "unexpected text after the closing quote" : "unexpected whitespace in value"
                throw DotEnvSyntaxError(line: line, reason: reason)
            }
        case .comment:
            break
        }
    }

    /// Replaces `${NAME}` at each marked `$`, last first so earlier offsets stay valid; an unknown
    /// NAME stays literal.
    private func interpolated(lookup: (String) -> String?) -> String {
        var scalars = Array(output)
        for start in interpolations.reversed() {
            guard start + 1 < scalars.count, scalars[start + 1] == "{" else { continue }
            var end = start + 2
            while end < scalars.count, Self.isNameScalar(scalars[end]) { end += 1 }
            guard end > start + 2, end < scalars.count, scalars[end] == "}" else { continue }
            let name = String(String.UnicodeScalarView(scalars[(start + 2)..<end]))
            guard let value = lookup(name) else { continue }
            scalars.replaceSubrange(start...end, with: Array(value.unicodeScalars))
        }
        return String(String.UnicodeScalarView(scalars))
    }

    private static func isNameScalar(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "a"..."z", "A"..."Z", "0"..."9", "_", ".": true
        default: false
        }
    }
}
