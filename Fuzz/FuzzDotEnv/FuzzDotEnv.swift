// Compiled only where `@testable` works: debug builds (corpus replay) and `make fuzz` (`-enable-testing
// -DFUZZING`). A release build (`make run`) gets a stub that says so.
#if DEBUG || FUZZING
    import FuzzSupport

    @testable import Reverb

    /// A `.env` file as `DotEnvParser` reads it (`config.md` §2), decoded from bytes as the loader
    /// decodes the file, with a small process environment for `${NAME}`.
    ///
    /// Invariants: nothing traps; a refused file names a line that exists and a reason; a read file's
    /// entries come in file order, with valid names; and its values, written back double-quoted with
    /// every special character escaped, read back to exactly the same names and values (scalar for
    /// scalar), none of them interpolated again.
    func fuzz(_ bytes: UnsafeRawBufferPointer) {
        let text = String(decoding: bytes, as: UTF8.self)
        let environment = ["HOME": "/home/reverb", "EMPTY": "", "SPACED": "a b"]
        let entries: [DotEnvParser.Entry]
        do {
            entries = try DotEnvParser.parse(text, environment: environment)
        } catch {
            let lines = physicalLineCount(text)
            require(error.line >= 1 && error.line <= lines, "error on line \(error.line) of \(lines)")
            require(!error.reason.isEmpty && !error.reason.hasSuffix("."), "reason \(error.reason.debugDescription)")
            return
        }
        var previousLine = 0
        for entry in entries {
            require(entry.line > previousLine, "entry \(entry.name) on line \(entry.line) after line \(previousLine)")
            previousLine = entry.line
            require(
                !entry.name.isEmpty && entry.name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." },
                "invalid name \(entry.name.debugDescription)")
        }
        let written = entries.map { entry in entry.value.map { "\(entry.name)=\(quoted($0))" } ?? entry.name }
            .joined(separator: "\n")
        let reread: [DotEnvParser.Entry]
        do {
            reread = try DotEnvParser.parse(written)
        } catch {
            return require(false, "written back, the file is refused: \(error) in \(written.debugDescription)")
        }
        require(reread.count == entries.count, "\(entries.count) entries written, \(reread.count) read back")
        for (original, again) in zip(entries, reread) {
            require(
                Array(original.name.unicodeScalars) == Array(again.name.unicodeScalars),
                "name \(original.name.debugDescription) read back as \(again.name.debugDescription)")
            require(
                original.value.map { Array($0.unicodeScalars) } == again.value.map { Array($0.unicodeScalars) },
                "value \(String(describing: original.value).debugDescription) of \(original.name) read back as "
                    + "\(String(describing: again.value).debugDescription) from \(written.debugDescription)")
        }
    }

    /// `value` double-quoted: `\`, `"` and `$` escaped, line breaks as `\n` and `\r`.
    func quoted(_ value: String) -> String {
        var out = String.UnicodeScalarView()
        out.append("\"")
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\", "\"", "$":
                out.append("\\")
                out.append(scalar)
            case "\n":
                out.append(contentsOf: #"\n"#.unicodeScalars)
            case "\r":
                out.append(contentsOf: #"\r"#.unicodeScalars)
            default:
                out.append(scalar)
            }
        }
        out.append("\"")
        return String(out)
    }

    /// Lines as the parser counts them: `\n`, `\r\n` and `\r` each end one.
    func physicalLineCount(_ text: String) -> Int {
        var count = 1
        var pendingCR = false
        for scalar in text.unicodeScalars {
            if pendingCR {
                pendingCR = false
                if scalar == "\n" { continue }
            }
            if scalar == "\n" || scalar == "\r" {
                count += 1
                pendingCR = scalar == "\r"
            }
        }
        return count
    }

    #if FUZZING
        @_cdecl("LLVMFuzzerTestOneInput")
        public func fuzzEntry(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
            fuzz(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        }

        @_cdecl("FuzzDotEnv_main")
        public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
            runFuzzer(argc, argv, fuzzEntry)
        }
    #else
        @main struct Replay {
            static func main() { CorpusReplay.run(target: "FuzzDotEnv", fuzz) }
        }
    #endif
#else
    import FuzzSupport

    @main struct Unavailable {
        static func main() { CorpusReplay.unavailable(target: "FuzzDotEnv") }
    }
#endif
